"""The OpenAPI schema tells what the server does (checked by `make fuzz`): what every view shares is declared
here once, in the schema class of all views, rather than on each view.

- Writes of the idempotent views take the `Idempotency-Key` header (its exact pattern) and may answer 400
  `idempotency_key_invalid`, 413 `request_too_large` and 422 `idempotency_key_reused`.
- Paginated lists may answer 400 (a bad `page` or `page_size`) and 404 (a page past the last).
- Decimals travel as strings whose pattern accepts exactly the numbers the field takes: no `""`, `"-"` or
  `"."`, and no minus sign where the field refuses negative values.
- A serializer with `exactly_one_field = True` (one way out of several to name a thing) is a `oneOf`.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from config.api.filters import MAX_TEXT_FILTER
from config.api.idempotency import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_PATTERN, WRITE_METHODS, IdempotentMixin
from config.api.problems import FIELD_ERRORS_COMPONENT, PROBLEM_CONTENT_TYPE, ProblemOutput

SHARED_PROBLEMS = {
    400: "validation_error, malformed_request or idempotency_key_invalid",
    404: "not_found: a page past the last",
    413: "request_too_large",
    422: "a domain error such as idempotency_key_reused",
}


class LoyaltyAutoSchema(AutoSchema):
    def _is_list_view(self, serializer: Any = None) -> bool:
        # Error responses are keyed (status, media type); only the success response tells a list.
        serializer = self.get_response_serializers() if serializer is None else serializer
        if isinstance(serializer, dict):
            success = {k: v for k, v in serializer.items() if isinstance(k, int | str) and str(k).startswith("2")}
            serializer = success or serializer
        return super()._is_list_view(serializer)

    def _is_idempotent_write(self) -> bool:
        return self.method in WRITE_METHODS and isinstance(self.view, IdempotentMixin)

    def get_override_parameters(self) -> list:
        parameters = list(super().get_override_parameters())
        if self._is_idempotent_write():
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
                    OpenApiParameter.HEADER,
                    required=False,
                    description="1 to 255 ASCII characters, visible or inner spaces, e.g. a UUID; anything else: "
                    "400 idempotency_key_invalid. A repeat with the same body replays the first answer (header "
                    "Idempotent-Replayed: true); with another body: 422 idempotency_key_reused.",
                )
            )
        return parameters

    def _shared_statuses(self) -> tuple[int, ...]:
        if self._is_idempotent_write():
            return (400, 413, 422)
        if self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
            return (400, 404)
        return ()

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status in self._shared_statuses():
            if str(status) not in responses:
                problem = OpenApiResponse(ProblemOutput, description=SHARED_PROBLEMS[status])
                responses[str(status)] = self._get_response_for_code(
                    problem, str(status), [PROBLEM_CONTENT_TYPE], direction
                )
        return responses

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and schema.get("format") == "decimal":
            schema["pattern"] = decimal_pattern(field)
        elif isinstance(field, serializers.ListField | serializers.ListSerializer):
            least = max(0 if field.allow_empty else 1, getattr(field, "min_length", None) or 0)
            if least:
                schema["minItems"] = max(schema.get("minItems", 0), least)
        elif (
            isinstance(field, serializers.CharField)
            and direction == "request"
            and "pattern" not in schema
            and not _has_regex(field)
        ):
            # DRF refuses NUL characters in every text field (PostgreSQL cannot store them), and trims
            # whitespace before it checks that a required text is not blank.
            schema["pattern"] = NO_NUL if field.allow_blank or not field.trim_whitespace else NOT_BLANK
        return schema

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        """django-filter's number bounds (id filters from 1, NumberFilter up to 1e50), which drf-spectacular omits."""
        parameters = super()._get_filter_parameters()
        filterset_class = getattr(self.view, "filterset_class", None)
        filters = filterset_class.base_filters if filterset_class else {}
        for parameter in parameters:
            form_field = getattr(filters.get(parameter["name"]), "field", None)
            schema = parameter.get("schema", {})
            if isinstance(form_field, forms.CharField) and schema.get("type") == "string":
                schema.setdefault("pattern", NO_NUL)  # Django's form fields refuse NUL characters too
                schema["maxLength"] = MAX_TEXT_FILTER
            if form_field is None or schema.get("type") not in NUMBERS:
                continue
            if isinstance(form_field, forms.IntegerField):
                parameter["schema"]["type"] = "integer"
            for validator in form_field.validators:
                key = {MinValueValidator: "minimum", MaxValueValidator: "maximum"}.get(type(validator))
                if key and isinstance(validator.limit_value, int | float | Decimal):
                    limit = validator.limit_value
                    parameter["schema"][key] = limit if isinstance(limit, int) else float(limit)
        return parameters

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(serializer, "refuses_unknown_fields", False):
            schema["additionalProperties"] = False
        if groups := getattr(serializer, "schema_required_groups", None):
            # anyOf/oneOf over sets of fields that must be there (and not blank), e.g. email or card to sign in.
            kind, sets = groups
            schema[kind] = [{"required": list(names), "properties": _non_blank(schema, names)} for names in sets]
        if getattr(serializer, "schema_min_properties", None):
            schema["minProperties"] = serializer.schema_min_properties
        if not getattr(serializer, "exactly_one_field", False):
            return schema
        properties = schema["properties"]
        return {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {other: prop if other == name else {"not": {}} for other, prop in properties.items()},
                    "required": [name],
                    **({"additionalProperties": False} if "additionalProperties" in schema else {}),
                }
                for name in properties
            ],
            **({"description": schema["description"]} if "description" in schema else {}),
        }


NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
NUMBERS = ("integer", "number")


def _has_regex(field: serializers.Field) -> bool:
    return any(hasattr(validator, "regex") for validator in field.validators)


def _non_blank(schema: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    least = {"string": {"minLength": 1}, "array": {"minItems": 1}}
    kinds = {name: _kind(properties.get(name, {})) for name in names}
    return {name: least[kind] for name, kind in kinds.items() if kind in least}


def _kind(prop: dict[str, Any]) -> str | None:
    # drf-spectacular writes a blank-allowed text field as oneOf [the text, maxLength 0].
    return prop.get("type") or next((choice.get("type") for choice in prop.get("oneOf", [])), None)


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The strings `field` accepts, as a regular expression: whole digits up to max_digits - decimal_places,
    decimals up to decimal_places, a sign only when negative values are allowed. A positive minimum (0.001,
    0.01) needs a non-zero digit; single-digit bounds such as 1 to 5 are spelled out."""
    whole, places = field.max_whole_digits, field.decimal_places
    fraction = "" if places == 0 else (r"(?:\.[0-9]+)?" if places is None else rf"(?:\.[0-9]{{1,{places}}})?")
    minimum, maximum = field.min_value, field.max_value
    if minimum is not None and maximum is not None and _single_digits(minimum, maximum) and whole == 1:
        low, high = int(minimum), int(maximum)
        zeros = "" if places == 0 else rf"(?:\.0{{1,{places}}})?"
        return rf"^(?:[{low}-{high - 1}]{fraction}|{high}{zeros})$"
    digits = r"[0-9]+" if whole is None else ("0" if whole == 0 else rf"[0-9]{{1,{whole}}}")
    if minimum is None or minimum < 0:
        return rf"^-?{digits}{fraction}$"
    if minimum == 0:
        return rf"^{digits}{fraction}$"
    if minimum == 1 and whole != 0:  # a whole part of at least 1 (an earn multiplier)
        return rf"^[1-9]{'[0-9]*' if whole is None else f'[0-9]{{0,{whole - 1}}}'}{fraction}$"
    # minimum is the smallest positive step of the field (0.001 with 3 places): any non-zero value.
    nonzero_whole = "[1-9]" + ("[0-9]*" if whole is None else rf"[0-9]{{0,{max(whole - 1, 0)}}}")
    nonzero_fraction = r"0*\.[0-9]*[1-9]" if places is None else rf"0?\.[0-9]{{0,{places - 1}}}[1-9]"
    return rf"^(?:{nonzero_whole}{fraction}|{nonzero_fraction})$"


def _single_digits(minimum: Any, maximum: Any) -> bool:
    return int(minimum) == minimum and int(maximum) == maximum and 0 <= minimum < maximum <= 9


def add_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: components that no serializer declares (FieldErrors refers to itself)."""
    result.setdefault("components", {}).setdefault("schemas", {})["FieldErrors"] = FIELD_ERRORS_COMPONENT
    return result
