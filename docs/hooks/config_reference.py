"""MkDocs hook: the configuration reference, generated from the pydantic schema at build time.

A page holding the marker ``<!-- config-reference -->`` gets, in its place, one section per model of
``watcher.config.WatcherConfig.model_json_schema()``: the root, then every ``$defs`` entry, each with
where it sits in the file, its environment variables, and a table of its keys (type, default, unit,
constraints, docstring). No key is named here: a field added to ``watcher/config/`` is in the docs
at the next build, and one removed is gone from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

MARKER = "<!-- config-reference -->"
ROOT = "WatcherConfig"
# The project's naming convention carries the unit in the key's suffix.
UNITS = (("_seconds", "seconds"), ("_bytes", "bytes"), ("_rows", "rows"))
BOUNDS = (("exclusiveMinimum", "> {}"), ("minimum", ">= {}"), ("exclusiveMaximum", "< {}"), ("maximum", "<= {}"),
          ("minLength", "length >= {}"), ("maxLength", "length <= {}"),
          ("minItems", "items >= {}"), ("pattern", "matches `{}`"))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - MkDocs' signature
    """Replace the marker with the generated reference."""
    if MARKER not in markdown:
        return markdown
    from watcher.config import WatcherConfig

    return markdown.replace(MARKER, render(WatcherConfig.model_json_schema(), WatcherConfig))


def render(schema: dict[str, Any], root: type[BaseModel]) -> str:
    """The whole reference: the root model first, then each ``$defs`` model in the order the file reaches it."""
    defs: dict[str, dict[str, Any]] = schema.get("$defs", {})
    where = _locations(schema, defs)
    order = [name for name in where if name in defs] + sorted(set(defs) - set(where))
    classes = _classes(root)
    parts = [_section(ROOT, schema, ["(the top level of the file)"], classes.get(ROOT), top=True)]
    parts += [_section(name, defs[name], where.get(name, []), classes.get(name)) for name in order]
    return "\n\n".join(parts) + "\n"


def _section(name: str, model: dict[str, Any], paths: list[str], cls: type[BaseModel] | None, top: bool = False) -> str:
    lines = [f"### `{name}` {{ #{name.lower()} }}", ""]
    if model.get("description"):
        lines += [_text(model["description"]), ""]
    if paths:
        lines += ["At: " + ", ".join(p if p.startswith("(") else f"`{p}`" for p in paths) + "."]
        env = ["WATCHER_<KEY>"] if top else [_env(p) + "__<KEY>" for p in paths if _env(p)]
        if env:
            lines += ["Environment: " + ", ".join(f"`{e}`" for e in env) + " (outranks the file)."]
        lines.append("")
    props: dict[str, Any] = model.get("properties", {})
    if not props:
        lines.append("No keys of its own.")
        return "\n".join(lines)
    required = set(model.get("required", []))
    lines += ["| key | type | default | unit | constraints | description |", "|---|---|---|---|---|---|"]
    for key, prop in props.items():
        row = [f"`{key}`", _type(prop), _default(key, prop, required, cls), _unit(key), _bounds(prop),
               _text(prop.get("description", ""))]
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return "\n".join(lines)


def _locations(schema: dict[str, Any], defs: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """``$defs`` name -> the dotted paths of the file where that model sits (``watches[].scoring``)."""
    found: dict[str, list[str]] = {}

    def walk(model: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> None:
        for key, prop in model.get("properties", {}).items():
            for name, path in _refs(prop, prefix + key):
                found.setdefault(name, [])
                if path not in found[name]:
                    found[name].append(path)
                if name in defs and name not in seen:
                    walk(defs[name], path + ".", (*seen, name))

    walk(schema, "", (ROOT,))
    return found


def _refs(prop: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    """Every model a property holds, with the path it sits at."""
    if "$ref" in prop:
        yield prop["$ref"].rsplit("/", 1)[-1], path
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        yield from _refs(option, path)
    if isinstance(prop.get("items"), dict):
        yield from _refs(prop["items"], path + "[]")
    if isinstance(prop.get("additionalProperties"), dict):
        yield from _refs(prop["additionalProperties"], path + ".<name>")


def _env(path: str) -> str:
    """``WATCHER_HTTP`` for ``http``; empty where a list or a map lies on the way (no variable reaches it)."""
    if "[" in path or "<" in path:
        return ""
    return "WATCHER_" + "__".join(part.upper() for part in path.split("."))


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        return " or ".join(_type(option) for option in options)
    if "enum" in prop:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return "list of " + _type(prop.get("items", {}))
    if kind == "object":
        extra = prop.get("additionalProperties")
        return "map of string to " + _type(extra) if isinstance(extra, dict) else "object"
    if kind == "string" and prop.get("format") == "password":
        return "secret string (never logged)"
    return str(kind)


def _default(key: str, prop: dict[str, Any], required: set[str], cls: type[BaseModel] | None) -> str:
    if key in required:
        return "required"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    field = cls.model_fields.get(key) if cls is not None else None
    if field is not None and field.default_factory is not None:  # the schema leaves factories out
        value = field.get_default(call_default_factory=True, validated_data={})
        return f"`{json.dumps(value.model_dump(mode='json') if isinstance(value, BaseModel) else value)}`"
    return "unset"


def _unit(key: str) -> str:
    return next((unit for suffix, unit in UNITS if key.endswith(suffix)), "")


def _bounds(prop: dict[str, Any]) -> str:
    found = [fmt.format(prop[name]) for name, fmt in BOUNDS if name in prop]
    for option in prop.get("anyOf", []):
        found += [fmt.format(option[name]) for name, fmt in BOUNDS if name in option]
    return ", ".join(found)


def _text(text: str) -> str:
    """A docstring as one Markdown line: Sphinx roles (``:func:`x```) become code."""
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text)
    return " ".join(text.split())


def _classes(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Schema title -> model class, for the defaults that come from a factory (lists, maps)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(cls: type[BaseModel]) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("watcher.config"):
                found.setdefault(sub.__name__, sub)
            visit(sub)

    visit(BaseModel)
    found[ROOT] = root
    return found


_CODE = re.compile(r"(``.+?``|`[^`]+`)")


def _cell(text: str) -> str:
    """A table cell: a pipe outside code is escaped (one inside a code span is not a column separator)."""
    return "".join(part if _CODE.fullmatch(part) else part.replace("|", "\\|") for part in _CODE.split(text))
