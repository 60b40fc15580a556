"""Serializer fields the surfaces share: a program by slug, a choice field documented as one named enum."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.fields import empty

from members.models import Program


class ProgramSlugField(serializers.SlugField):
    """A program the user manages, by slug (a `programs` queryset in the serializer's context)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Slug of a program you manage.")
        super().__init__(max_length=64, **kwargs)

    def run_validation(self, data: Any = empty) -> Program:
        slug = super().run_validation(data)  # a valid slug first, then the program
        program = self.context["programs"].filter(slug=slug).first()
        if program is None:
            raise serializers.ValidationError(f"You manage no program with the slug “{slug}”.")
        return program

    def to_representation(self, value: Any) -> str:
        return value.slug if isinstance(value, Program) else str(value)


class NamedChoiceField(serializers.ChoiceField):
    """A choice field documented as one named enum component (`EarningRuleKindEnum`, `ChannelEnum`), so
    the same choices keep one name in the schema wherever they appear, in lists and subclasses too."""

    def __init__(self, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        field = self.target
        schema = {
            "type": "string",
            "enum": list(field.choices),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in field.choices.items()),
        }
        component = ResolvedComponent(
            name=field.enum_name, type=ResolvedComponent.SCHEMA, object=field.enum_name, schema=schema
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref
