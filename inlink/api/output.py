"""Output formats of the API (`output=json|xml`): one data dict, rendered by a registry of
renderers (the datasette pattern), so every dialect gets both formats for free."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from inlink.errors import InvalidInput

Renderer = Callable[[Any], bytes]


def render_json(data: Any) -> bytes:
    return orjson.dumps(data)


def _xml_value(parent: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _xml_value(ET.SubElement(parent, str(k)), v)
    elif isinstance(value, list | tuple):
        for v in value:
            _xml_value(ET.SubElement(parent, "item"), v)
    elif value is None:
        parent.set("nil", "true")
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif isinstance(value, dt.date):
        parent.text = value.isoformat()
    else:
        parent.text = str(value)


def render_xml(data: Any) -> bytes:
    """`<response>` with one element per key; list items are `<item>`; null is nil="true"."""
    root = ET.Element("response")
    _xml_value(root, data)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


RENDERERS: dict[str, tuple[Renderer, str]] = {
    "json": (render_json, "application/json"),
    "xml": (render_xml, "application/xml; charset=utf-8"),
}


def check_output(value: str | None) -> str:
    """The output format asked for (default json), or InvalidInput naming `output`."""
    fmt = "json" if value is None or value == "" else value.lower()
    if fmt not in RENDERERS:
        raise InvalidInput("output", f"{value!r} is not one of {', '.join(RENDERERS)}")
    return fmt


def render(data: Any, fmt: str) -> tuple[bytes, str]:
    """Body and media type of `data` in format `fmt` (already checked)."""
    fn, media_type = RENDERERS[fmt]
    return fn(data), media_type
