"""MkDocs hook: the map of packages and modules, generated from the code at build time.

A page holding the marker ``<!-- module-map -->`` gets, in its place, one table per layer of the
import-linter ``layers`` contract in ``pyproject.toml`` (top layer first), each row a module of that
package with the first paragraph of its docstring. The source is read, never imported, so a module
added, renamed or removed shows here at the next build.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the docs extra brings tomli there
    import tomli as tomllib

MARKER = "<!-- module-map -->"
ROOT = Path(__file__).resolve().parents[2]


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - MkDocs' signature
    """Replace the marker with the generated map."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(ROOT))


def layers(root: Path) -> list[str]:
    """The packages of the layers contract, top first (``a | b`` on one layer gives both)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    contract = next(c for c in project["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def render(root: Path) -> str:
    parts = []
    for package in layers(root):
        folder = root / package.replace(".", "/")
        lines = [f"### `{package}`", "", _summary(folder / "__init__.py"), "",
                 "| module | what it holds |", "|---|---|"]
        for path in sorted(folder.glob("*.py")):
            if path.name != "__init__.py":
                lines.append(f"| `{path.stem}` | {_cell(_summary(path))} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line, Sphinx roles as code."""
    doc = ast.get_docstring(ast.parse(path.read_text())) if path.exists() else None
    first = (doc or "(no docstring)").split("\n\n")[0]
    return " ".join(re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first).split())


_CODE = re.compile(r"(``.+?``|`[^`]+`)")


def _cell(text: str) -> str:
    """A table cell: a pipe outside code is escaped (one inside a code span is not a column separator)."""
    return "".join(part if _CODE.fullmatch(part) else part.replace("|", "\\|") for part in _CODE.split(text))
