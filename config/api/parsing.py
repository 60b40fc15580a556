"""How the API reads request bodies and answers OPTIONS (DEFAULT_PARSER_CLASSES and DEFAULT_METADATA_CLASS).

Kept apart from the surfaces' base classes (config.api.pos, manage, app), which import DRF's views:
DRF's settings import these classes while its views load.
"""

from typing import Any

from rest_framework import exceptions, parsers
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a nesting limit: no body of this API nests deeper than `max_depth`, and a
    100,000-deep one would exhaust the interpreter's recursion (a 500) before any serializer saw it."""

    max_depth = 32

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        too_deep = exceptions.ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if _nesting_exceeds(data, self.max_depth):
            raise too_deep
        return data


def _nesting_exceeds(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers the view's name, description and formats; the Allow header lists its methods and the
    OpenAPI schema documents the bodies. (DRF's default also describes the body of each write by building its
    serializer, which views that parse their input with `parse()` do not declare: an assertion, a 500.)"""

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
