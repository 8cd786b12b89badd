"""MkDocs hook: the log event reference, generated from ``watcher.obs.events.CATALOGUE`` at build time.

A page holding the marker ``<!-- event-catalogue -->`` gets, in its place, one table row per declared
event (``EventSpec``: name, level, fields, meaning, action, emitter), in the catalogue's order. The
daemon and the CLI emit through that catalogue, so the page lists exactly what they can say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MARKER = "<!-- event-catalogue -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - MkDocs' signature
    """Replace the marker with the generated catalogue."""
    if MARKER not in markdown:
        return markdown
    from watcher.obs.events import CATALOGUE

    return markdown.replace(MARKER, render(CATALOGUE))


def render(catalogue: Mapping[str, Any]) -> str:
    """A Markdown table of every event: its level, its fields, what it means, what to do, who emits it."""
    lines = [f"{len(catalogue)} events.", "",
             "| event | level | fields | meaning | what to do | emitted by |", "|---|---|---|---|---|---|"]
    for name, spec in catalogue.items():
        fields = ", ".join(f"`{field}`" for field in spec.fields)
        row = [f"`{name}`", _str(spec.level), fields, _str(spec.meaning), _str(spec.action), _str(spec.emitter)]
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return "\n".join(lines) + "\n"


def _str(value: Any) -> str:
    """One table cell: enums by value, text on one line."""
    text = str(getattr(value, "value", value) or "")
    return " ".join(text.split())


_CODE = re.compile(r"(``.+?``|`[^`]+`)")


def _cell(text: str) -> str:
    """A table cell: a pipe outside code is escaped (one inside a code span is not a column separator)."""
    return "".join(part if _CODE.fullmatch(part) else part.replace("|", "\\|") for part in _CODE.split(text))
