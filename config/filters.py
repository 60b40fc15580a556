"""Query filters every list shares (django-filter).

`BooleanFilter` takes `true` or `false`, as the schema's boolean says; anything else (`1`, `yes`, an empty
value) is a 400 validation_error instead of django-filter's silent "no filter"."""

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError


class StrictBooleanField(forms.NullBooleanField):
    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value is None:
            return None  # the parameter was not sent
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Give true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField
