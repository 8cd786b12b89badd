"""MkDocs hook: the MLflow environment the watcher's process sets at start, from the code.

A page holding the marker ``<!-- mlflow-environment -->`` gets, in its place, a table of
``watcher.obs.environment.MLFLOW_ENVIRONMENT`` (variable, default, and the comment above it in the
module), so the page cannot drift from what ``apply_mlflow_environment`` sets.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from watcher.obs import environment

MARKER = "<!-- mlflow-environment -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - MkDocs' signature
    """Replace the marker with the table."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())


def _reasons() -> dict[str, str]:
    """Variable -> the comment lines above it (a comment covers the variables that follow it)."""
    source = inspect.getsource(environment)
    lines = source.splitlines()
    tree = ast.parse(source)
    reasons: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            comment = ""
            for key in node.keys:
                if not isinstance(key, ast.Constant):
                    continue
                above, row = [], key.lineno - 2
                while row >= 0 and lines[row].strip().startswith("#"):
                    above.insert(0, lines[row].strip().lstrip("#").strip())
                    row -= 1
                comment = " ".join(above) or comment
                reasons[str(key.value)] = comment
    return reasons


def render() -> str:
    """The markdown table."""
    reasons = _reasons()
    rows = ["| Variable | Default | Why |", "|---|---|---|"]
    for name, value in environment.MLFLOW_ENVIRONMENT.items():
        rows.append(f"| `{name}` | `{value}` | {reasons.get(name, '')} |")
    return "\n".join(rows) + "\n"
