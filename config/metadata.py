"""What OPTIONS answers on every API view (REST_FRAMEWORK["DEFAULT_METADATA_CLASS"]).

A module of its own: DRF imports it while `rest_framework.views` loads, before `config.api` could be.
"""

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class SchemaMetadata(SimpleMetadata):
    """The view's name, description, renderers and parsers. The request bodies are in the OpenAPI schema
    (/api/schema/): the views build their serializers in the handlers, so DRF's per-method `actions`, which
    call `get_serializer()`, would answer a 500."""

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        return {}
