"""The house keeps its shape: one owner for MLflow state, small modules, a gate registry with no gaps.

No server: these read the source tree (and the registries) only. The layers themselves are checked
by import-linter (``lint-imports`` in ``.ci/run``, contract in ``pyproject.toml``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mlflow import MlflowClient

from handlers.gates import BUILTINS  # importing the gates module registers them
from watcher.config import BUILTIN_GATES

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = sorted([*ROOT.glob("watcher/**/*.py"), *ROOT.glob("handlers/**/*.py")])
STORE = ROOT / "watcher" / "store"
TEST_SUPPORT = {ROOT / "watcher" / "testing.py"}
CLIENT_METHODS = {name for name in dir(MlflowClient) if not name.startswith("_")}
MAX_LINES = 350


def _client_calls(path: Path) -> list[str]:
    """``<something>.<MlflowClient method>(...)`` calls in one module, as ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLIENT_METHODS:
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and receiver.id in ("client", "self") or (
                    isinstance(receiver, ast.Attribute) and receiver.attr == "client"):
                found.append(f"{node.lineno}: {node.func.attr}")
    return found


def test_the_client_method_list_is_real():
    assert {"set_registered_model_alias", "create_model_version", "search_runs", "log_batch"} <= CLIENT_METHODS


@pytest.mark.parametrize("path", [p for p in PRODUCT if STORE not in p.parents and p not in TEST_SUPPORT],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_store_calls_the_mlflow_client(path: Path):
    assert _client_calls(path) == [], f"{path.relative_to(ROOT)} talks to MLflow itself; go through watcher.store"


def test_the_check_would_catch_a_call(tmp_path: Path):
    stray = tmp_path / "stray.py"
    stray.write_text("def f(client):\n    client.set_registered_model_alias('m', 'a', '1')\n")
    assert _client_calls(stray) == ["2: set_registered_model_alias"]


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_350_lines(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_every_builtin_gate_has_a_function_and_every_function_a_config():
    assert set(BUILTINS) == set(BUILTIN_GATES.values())
    assert list(BUILTIN_GATES) == ["metric", "features", "champion", "data", "safe_serialization"]


def test_tag_keys_live_in_one_module():
    """A ``"watcher.<something>"`` tag literal outside ``watcher/store/keys.py`` is a second owner."""
    offenders = []
    for path in PRODUCT:
        if path == STORE / "keys.py":
            continue
        tree = ast.parse(path.read_text())
        logger_names = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "get_logger" for arg in node.args}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in logger_names \
                    and node.value.startswith("watcher.") and node.value.count(".") == 1 \
                    and node.value.split(".")[1].isidentifier() and node.value != "watcher.yaml":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert offenders == []
