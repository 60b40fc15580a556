"""GDPR export: each app registers the part of a member's data it owns.

`members` cannot import the apps built on it, so they register an exporter in
their `AppConfig.ready()` and `member_export` collects every part.
"""

from collections.abc import Callable
from typing import Any

Exporter = Callable[[Any], Any]
_exporters: dict[str, Exporter] = {}


def register_exporter(name: str, exporter: Exporter) -> None:
    _exporters[name] = exporter


def registered_exporters() -> dict[str, Exporter]:
    return dict(_exporters)
