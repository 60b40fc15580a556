"""Query filters every list shares (django-filter), as strict as the schema says (config.api.openapi):

- `BooleanFilter` takes `true` or `false`; anything else (`1`, `yes`, an empty value) is a 400
  validation_error instead of django-filter's silent "no filter".
- `IdFilter` takes a whole number from 1 to 2^63 - 1 (the schema: an integer with those bounds).
- `FilterBackend` refuses an empty value of a number, date, time or choice filter (`?occurred_before=`),
  which django-filter would take for "no filter"; text filters may be empty but hold at most
  `MAX_TEXT_FILTER` characters (a search term, a slug, an external id), so a query string stays well under
  the request-line limits of servers and proxies (gunicorn: 4094 bytes)."""

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions
from rest_framework.request import Request

from members.ids import MAX_ID

MAX_TEXT_FILTER = 100


class StrictBooleanField(forms.NullBooleanField):
    widget = forms.TextInput

    # NullBooleanField's own signature (the stubs ignore its override of BooleanField.to_python too).
    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]
        if value is None:
            return None  # the parameter was not sent
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Give true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)

    def get_max_validator(self) -> None:
        return None  # max_value above replaces NumberFilter's 1e50


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            errors = {}
            for name, declared in filterset_class.base_filters.items():
                values = request.query_params.getlist(name)
                if isinstance(declared.field, forms.CharField):
                    if any(len(value) > MAX_TEXT_FILTER for value in values):
                        errors[name] = [f"Give at most {MAX_TEXT_FILTER} characters."]
                elif "" in values:
                    errors[name] = ["Give a value or leave the parameter out."]
            if errors:
                raise exceptions.ValidationError(errors)
        return super().filter_queryset(request, queryset, view)


def id_filter(field: str, help_text: str) -> IdFilter:
    return IdFilter(field_name=field, help_text=help_text)


def program_filter() -> django_filters.CharFilter:
    """`?program=<slug>` on a list of rows of the managed programs (`config.api.queries` for reports)."""
    return django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
