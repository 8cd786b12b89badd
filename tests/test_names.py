"""One concept, one name: no two functions, methods or classes in ``watcher/``, ``handlers/`` and
``plugins/`` share a name unless they are the same thing (the short allow-list below says why).

No server: the source tree is read with ``ast``. Module-level functions and classes and the methods
of module-level classes count; dunder methods and nested functions do not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("watcher", "handlers", "plugins")

SAME_CONCEPT = {
    # a protocol and the class that implements it (engine/session.py <- service/leader.py)
    "Leader": "the lock protocol the engine needs, and the replicas' lock that implements it",
    "acquire": "Leader protocol method and its implementation",
    "holds": "Leader protocol method and its implementation",
    # lifecycle and thread methods of different classes
    "start": "start a part (scoring worker, HTTP server, scheduler)",
    "stop": "stop a part, or (watcher.testing) the MLflow server a test started",
    "_run": "a thread's body (HTTP server, the plugin's sender)",
    "submit": "queue work for a background thread (scoring worker, the plugin's sender)",
    "poll": "one poll: the process's (reload first) delegates to the poller's",
    # serialisation and accessors of value classes
    "as_json": "this value as a JSON-ready dict",
    "run_id": "the run's id, a property of a value that holds a run",
    # thin wrappers and views of the same fact
    "find": "an experiment's id by name, None when missing (ExperimentIds, its module wrapper, the audit trail's)",
    "get_or_create": "the watcher's own experiment id (ExperimentIds and its module wrapper)",
    "name_of": "an experiment's name by id (ExperimentIds and its module wrapper)",
    "recent": "an alias's newest audit entries (the store's read and the tick's cache of it)",
    "refresh": "a cache re-reads its source (discovery, the audit cache, the watch set)",
    "watches": "the effective watch set (discovery computes it; watch set, poller, process pass it on)",
    "watch_for": "the first watch of a model (the config's, the effective set's)",
    "request": "ask for something at the next opportunity (a reload, a tick)",
    "set_tracking_up": "the tracking server answered: the gauge and the health state record the same fact",
    # a CLI verb and the store function it prints
    "dispatch": "route a parsed CLI verb (top level, the webhooks sub-verbs)",
    "explain": "the explain verb prints what cli.explain.explain finds",
    "after_tick": "each part's hook at the end of a tick (the console's, the outgoing events'), called by the process",
    "install": "the webhooks install verb prints what store.webhooks.install did",
    "uninstall": "the webhooks uninstall verb prints what store.webhooks.uninstall did",
    # issue 28: the Output protocol (watcher.events.model) and its implementations (http, nats, slack)
    "send": "Output protocol method: one delivery attempt (the http, nats and slack outputs)",
    "check": "Output protocol method: reach the receiver for check-config (the http, nats and slack outputs)",
    "close": "release a part's connections (the ha lock session, an events output, the outbox database)",
    "statement": "the outbox Database protocol method and its SQLite and PostgreSQL implementations",
    "statements": "the outbox Database protocol method and its SQLite and PostgreSQL implementations",
    "accepts": "an events output's filter: the base rule and Slack's default (moves and rejections)",
    "pending_by_model": "the console's per-model count of what waits (approval requests, outgoing events)",
    # the same HMAC scheme in the plugin's separate distribution (it cannot import the watcher)
    "sign": "the webhook signature (the watcher's and the plugin's copy)",
}

PENDING: dict[str, str] = {}
"""Different things under one name still to be renamed (empty: none left)."""


def _definitions() -> dict[str, list[str]]:
    """Name -> where it is defined (``path:line`` or ``path:Class.method:line``)."""
    found: dict[str, list[str]] = defaultdict(list)
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            where = path.relative_to(ROOT)
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found[node.name].append(f"{where}:{node.lineno}")
                if isinstance(node, ast.ClassDef):
                    for sub in node.body:
                        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            found[sub.name].append(f"{where}:{node.name}.{sub.name}:{sub.lineno}")
    return {name: places for name, places in found.items()
            if not (name.startswith("__") and name.endswith("__"))}


def _shared() -> dict[str, list[str]]:
    return {name: places for name, places in _definitions().items() if len(places) > 1}


def test_no_name_means_two_things():
    unexplained = {name: places for name, places in _shared().items() if name not in SAME_CONCEPT | PENDING}
    assert not unexplained, (
        "same name, defined more than once: rename the one whose name misleads, or (the same concept: a "
        f"protocol method, a lifecycle method, a thin wrapper) add it to SAME_CONCEPT with why: {unexplained}")


def test_the_allow_list_stays_short():
    stale = sorted((set(SAME_CONCEPT) | set(PENDING)) - set(_shared()))
    assert not stale, f"no longer shared, drop from the allow-list: {stale}"


def test_one_class_per_name():
    classes: dict[str, list[str]] = defaultdict(list)
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    classes[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    twice = {name: places for name, places in classes.items() if len(places) > 1 and name not in SAME_CONCEPT}
    assert not twice, f"one class per concept name: {twice}"
    assert len(classes.get("Outcome", [])) <= 1
