"""Issue 25, item 8: every log event the daemon and the CLI emit is declared once, in
``watcher.obs.events.CATALOGUE``, and the watcher's loggers emit nothing else.

No server: (a) the source of ``watcher/`` and ``handlers/`` is scanned with ``ast`` for every
logging call whose event is a string literal (also through ``(log.debug if x else log.warning)(...)``,
a variable bound to a log method, or a variable bound to literal names); each must be catalogued,
with the fields it passes. (b) Each catalogued event is emitted somewhere. (c) The runtime guard:
strict in the suite (``tests/conftest.py`` sets ``REGISTRY_WATCHER_STRICT_EVENTS=1``), in
production an ``uncatalogued_event`` error and the event as it came.
"""

from __future__ import annotations

import ast
import io
import json
from collections import defaultdict
from pathlib import Path

import pytest

from watcher.obs import logs
from watcher.obs.events import CATALOGUE, EMITTERS, LEVELS

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("watcher", "handlers")
LOG_METHODS = {"debug", "info", "warning", "error", "critical", "exception"}
RENAMED = {"exc_info": "exception"}  # structlog renders exc_info as ``exception``


def _is_log_method(node: ast.expr) -> bool:
    """``x.info`` (any receiver), or an IfExp whose two branches are log methods."""
    if isinstance(node, ast.Attribute):
        return node.attr in LOG_METHODS
    return isinstance(node, ast.IfExp) and _is_log_method(node.body) and _is_log_method(node.orelse)


def _literals(node: ast.expr) -> list[str] | None:
    """The event names a literal (or an IfExp of literals) can be, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _scopes(tree: ast.Module) -> list[ast.AST]:
    return [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]


def _assigned(scope: ast.AST) -> dict[str, ast.expr]:
    """Simple ``name = value`` assignments directly in a scope (not in its nested functions)."""
    found: dict[str, ast.expr] = {}
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        todo.extend(ast.iter_child_nodes(node))
    return found


def emitted(source: str, where: str) -> list[tuple[str, set[str], bool, str]]:
    """(event, keyword fields, has ``**kwargs``, where) for every logging call with a literal event."""
    tree = ast.parse(source)
    calls: list[tuple[str, set[str], bool, str]] = []
    for scope in _scopes(tree):
        names = _assigned(scope)
        todo = list(ast.iter_child_nodes(scope))
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # its own scope
            todo.extend(ast.iter_child_nodes(node))
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in names:
                func = names[func.id]
            if not _is_log_method(func):
                continue
            first = node.args[0]
            events = _literals(names[first.id]) if isinstance(first, ast.Name) and first.id in names else _literals(first)
            fields = {RENAMED.get(k.arg, k.arg) for k in node.keywords if k.arg is not None}
            spread = any(k.arg is None for k in node.keywords)
            calls.extend((event, fields, spread, f"{where}:{node.lineno}") for event in events or ())
    return calls


def _scan() -> list[tuple[str, set[str], bool, str]]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            found.extend(emitted(path.read_text(), str(path.relative_to(ROOT))))
    return found


def test_the_scan_sees_every_form_of_logging_call():
    source = '''
log = get_logger("x")
def f(bad):
    log.info("plain", a=1)
    (log.debug if bad else log.warning)("ifexp", b=2, **extra)
    level = log.info if bad else log.debug
    level("bound", c=3)
    event = "one" if bad else "two"
    log.info(event)
    log.critical("crash", exc_info=True)
    say("not_logging")
'''
    found = {(e, frozenset(f), s) for e, f, s, _ in emitted(source, "t")}
    assert found == {("plain", frozenset({"a"}), False), ("ifexp", frozenset({"b"}), True),
                     ("bound", frozenset({"c"}), False), ("one", frozenset(), False), ("two", frozenset(), False),
                     ("crash", frozenset({"exception"}), False)}


def test_every_emitted_event_is_catalogued_with_its_fields():
    calls = _scan()
    assert len({event for event, *_ in calls}) >= 70, "the scan found too little: is it still looking?"
    missing = sorted({f"{where}: {event}" for event, _f, _s, where in calls if event not in CATALOGUE})
    assert missing == [], "declare these in watcher/obs/events.py"
    undeclared = sorted(f"{where}: {event} passes {sorted(f - set(CATALOGUE[event].fields))}"
                        for event, f, _s, where in calls if not f <= set(CATALOGUE[event].fields))
    assert undeclared == [], "add these fields to the events' EventSpec"


def test_every_catalogued_event_is_emitted_and_every_field_passed():
    passed: dict[str, set[str]] = defaultdict(set)
    spread: set[str] = set()
    for event, fields, has_spread, _where in _scan():
        passed[event] |= fields
        if has_spread:
            spread.add(event)
    assert sorted(set(CATALOGUE) - set(passed)) == [], "dead entries: nothing emits them"
    stale = {name: sorted(set(spec.fields) - passed[name]) for name, spec in CATALOGUE.items()
             if name not in spread and set(spec.fields) - passed[name]}
    assert stale == {}, "fields declared but never passed"


def test_each_entry_is_complete():
    for name, spec in CATALOGUE.items():
        assert spec.name == name and name.isidentifier() and name == name.lower(), name
        assert spec.level in LEVELS and spec.emitter in EMITTERS, name
        assert spec.meaning.strip() and spec.action.strip(), name
        assert len(set(spec.fields)) == len(spec.fields), name


def _capture(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    logs.configure_logging("DEBUG", "json", stream=stream)
    monkeypatch.setattr(logs, "_said_uncatalogued", set())
    return stream


def test_the_suite_runs_strict_and_a_catalogued_event_passes(monkeypatch: pytest.MonkeyPatch):
    stream = _capture(monkeypatch)
    log = logs.get_logger("watcher.test")
    log.info("poll_completed", registered=1, rejected=0, scored=0, scoring_queued=0, ok=True)
    line = json.loads(stream.getvalue())
    assert (line["event"], line["level"], line["logger"], line["registered"]) == ("poll_completed", "info",
                                                                                  "watcher.test", 1)
    with pytest.raises(logs.UncataloguedEvent, match="not_an_event"):
        log.warning("not_an_event", x=1)
    assert stream.getvalue().count("\n") == 1  # nothing written for the refused one


def test_in_production_an_uncatalogued_event_is_said_once_and_written(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(logs.STRICT_EVENTS_ENV, raising=False)
    stream = _capture(monkeypatch)
    log = logs.get_logger("watcher.test")
    for _ in range(2):
        (log.debug if False else log.warning)("not_an_event", x=1)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("uncatalogued_event", "error"), ("not_an_event", "warning"), ("not_an_event", "warning")]
    assert lines[0]["event_name"] == "not_an_event" and lines[1]["x"] == 1
