"""How every API surface reads a request body: strictly (DESIGN.md section 10).

- `InputSerializer` is the base of every request-body serializer (POS, member app, manager). A key that no
  writable field of the serializer, or of a nested one (`member`, `lines[]`), reads is refused before anything
  else with 400 `unknown_field`, its `errors` shaped like those of `validation_error` and naming each such key:
  a typo (`storeid`, `externalId`) never loses data silently.
- `AwareDateTimeField` refuses a timestamp without a UTC offset (400 `validation_error` on that field) instead of
  guessing a time zone; `AwareIsoDateTimeFilter` does the same for the timestamps of list filters. Program-local
  times are for the admin's forms only (`members.admin.ProgramScopedAdmin`).

Query-string serializers stay plain `Serializer`s: pagination, filters and format parameters share the query.
"""

from datetime import datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

from members.exceptions import DomainError

NAIVE_MESSAGE = "Give the time with its UTC offset, e.g. 2026-03-28T23:30:00+01:00 or 2026-03-28T22:30:00Z."
UNKNOWN_FIELD_MESSAGE = "Unknown field: this request does not take it (check the spelling)."


class UnknownFields(DomainError):
    code = "unknown_field"
    status = 400
    title = "The request has unknown fields"


def unknown_fields(field: serializers.Field, data: Any) -> dict[str, Any] | list[Any]:
    """The keys of `data` that `field` (a serializer, a list of serializers) does not read, as per-field errors
    shaped like a validation error's (`{"member": {"storeid": [...]}, "lines": [{}, {"skux": [...]}]}`); empty
    when there are none. Data of the wrong shape is left to the fields' own validation."""
    if isinstance(field, serializers.ListSerializer | serializers.ListField) and isinstance(data, list):
        child = field.child
        items = [unknown_fields(child, item) if child is not None else {} for item in data]
        return items if any(items) else []
    if not isinstance(field, serializers.Serializer) or not isinstance(data, dict):
        return {}
    writable = {name: sub for name, sub in field.fields.items() if not sub.read_only}
    errors: dict[str, Any] = {}
    for key, value in data.items():
        if key not in writable:
            errors[str(key)] = [UNKNOWN_FIELD_MESSAGE]
        elif nested := unknown_fields(writable[key], value):
            errors[key] = nested
    return errors


def field_paths(errors: dict[str, Any] | list[Any], prefix: str = "") -> list[str]:
    """`member.storeid`, `lines[1].skux`: where each refused key sits."""
    if isinstance(errors, list):
        return [path for i, item in enumerate(errors) for path in field_paths(item, f"{prefix}[{i}]")]
    paths = []
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths.extend([path] if value == [UNKNOWN_FIELD_MESSAGE] else field_paths(value, path))
    return paths


class InputSerializer(serializers.Serializer):
    # Base of every request-body serializer: unknown keys, at any depth, are refused (400 `unknown_field`).
    # A comment, not a docstring: drf-spectacular describes a body by the nearest docstring of its class's
    # bases, so every input serializer without its own would have shown this note in the OpenAPI schema.

    refuses_unknown_fields = True  # the schema says additionalProperties: false (config.api.openapi)

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        if self.parent is None and not hasattr(self, "_validated_data"):
            errors = unknown_fields(self, self.initial_data)
            if errors:
                self._validated_data: Any = {}
                self._errors: Any = errors
                if raise_exception:
                    raise UnknownFields(f"Unknown fields: {', '.join(field_paths(errors))}.", errors=errors)
                return False
        return super().is_valid(raise_exception=raise_exception)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its UTC offset (`Z` or `+01:00`); naive ones are refused."""

    default_error_messages = {"naive": NAIVE_MESSAGE}

    def to_internal_value(self, value: Any) -> datetime:
        moment = value if isinstance(value, datetime) else _parse(value)
        if moment is not None and timezone.is_naive(moment):
            self.fail("naive")
        return super().to_internal_value(value)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value.strip())
    except ValueError:  # well formed but not a date (month 13): the field says so
        return None


class AwareIsoDateTimeFormField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        moment = _parse(value)
        if moment is not None and timezone.is_naive(moment):
            raise ValidationError(NAIVE_MESSAGE, code="naive")
        return super().to_python(value)


class AwareIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """A list filter's timestamp, with its UTC offset (URL-encode `+` as `%2B`); naive ones are refused."""

    field_class = AwareIsoDateTimeFormField


def plain_parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any] | None:
    """The validated data of a plainly valid body, equal to what `serializer_class(data=data)` validates, or None
    for anything else: then validate with the serializer itself, which says what is wrong.

    For the till's busiest calls: DRF copies every field of every serializer it builds (about half a millisecond
    of a purchase, docs/benchmarks.md); here the serializer's own declared fields validate their values, with
    the same `validate()` and `validate_<field>()` of each serializer. Anything this does not follow exactly
    (an unknown or null value, a serializer-level validator, a field with its own `source`) returns None.
    tests/config/test_plain_parse.py compares the two on generated bodies."""
    return _plain(serializer_class(), data)


def _plain(serializer: serializers.Serializer, data: Any) -> dict[str, Any] | None:
    declared: dict[str, serializers.Field] = type(serializer)._declared_fields
    if type(data) is not dict or not data.keys() <= declared.keys() or _has_validators(serializer):
        return None
    attrs: dict[str, Any] = {}
    for name, field in declared.items():
        if field.read_only or field.source not in (None, name):
            return None
        if name not in data:
            if field.required:
                return None
            if field.default is not serializers.empty:
                attrs[name] = field.get_default()
            continue
        value = _plain_value(field, data[name])
        if value is None:
            return None
        if check := getattr(serializer, f"validate_{name}", None):
            value = _checked(check, value)
            if value is None:
                return None
        attrs[name] = value
    return _checked(serializer.validate, attrs)


def _plain_value(field: serializers.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, serializers.ListSerializer):
        child = field.child
        size = len(value) if type(value) is list else -1
        longest, shortest = getattr(field, "max_length", None), getattr(field, "min_length", None)
        if not isinstance(child, serializers.Serializer) or size < 0 or (longest or size) < size:
            return None
        if size == 0 and not field.allow_empty or shortest is not None and size < shortest:
            return None
        items = [_plain(child, item) for item in value]
        return None if any(item is None for item in items) else items
    if isinstance(field, serializers.Serializer):
        return _plain(field, value)
    try:
        return field.run_validation(value)
    except (serializers.ValidationError, ValidationError):
        return None


def _checked(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except (serializers.ValidationError, ValidationError):
        return None


def _has_validators(serializer: serializers.Serializer) -> bool:
    return bool(getattr(getattr(serializer, "Meta", None), "validators", None))


def parse(serializer_class: type[serializers.Serializer], data: Any, **context: Any) -> dict[str, Any]:
    """Validated input of a request, or a validation_error problem."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
