"""Serializer fields the surfaces share: a row's id, a program by slug, a choice field documented as one named enum."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.fields import empty

from members.access import access_program_by_slug
from members.exceptions import ProgramNotFound
from members.ids import MAX_ID
from members.models import Program


class IdField(serializers.IntegerField):
    """A row's id in a request: a whole number from 1 to the largest bigint (`members.ids`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class ProgramSlugField(serializers.SlugField):
    """A program the user manages, by slug (the `user` in the serializer's context; `members.access`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Slug of a program you manage.")
        super().__init__(max_length=64, **kwargs)

    def run_validation(self, data: Any = empty) -> Program:
        slug = super().run_validation(data)  # a valid slug first, then the program
        try:
            return access_program_by_slug(self.context["user"], slug)
        except ProgramNotFound:
            raise serializers.ValidationError(f"You manage no program with the slug “{slug}”.") from None

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
