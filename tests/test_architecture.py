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
MAX_LINES = 300
MAX_COMPLEXITY = 15
MAX_PARAMETERS = 8
"""Issue 25's limits: modules of at most 300 lines, functions of cyclomatic complexity <= 15 (radon)
and <= 8 parameters besides ``self``/``cls`` (ruff's C901 and PLR0913 say the same in ``make lint``)."""
HOUSE = sorted([*PRODUCT, *ROOT.glob("plugins/*/src/**/*.py")])


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


@pytest.mark.parametrize("path", HOUSE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_300_lines(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len([n for n in names if n not in ("self", "cls")])


def test_no_function_is_too_complex_or_takes_too_many_parameters():
    from radon.complexity import cc_visit

    complex_, wide = [], []
    for path in HOUSE:
        text = path.read_text()
        where = path.relative_to(ROOT)
        complex_ += [f"{where}:{b.lineno} {b.fullname} ({b.complexity})" for b in cc_visit(text)
                     if b.complexity > MAX_COMPLEXITY]
        wide += [f"{where}:{n.lineno} {n.name} ({_parameters(n)})" for n in ast.walk(ast.parse(text))
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _parameters(n) > MAX_PARAMETERS]
    assert complex_ == [], f"cyclomatic complexity above {MAX_COMPLEXITY}"
    assert wide == [], f"more than {MAX_PARAMETERS} parameters"


def _import_graph() -> dict[str, set[str]]:
    """``watcher``/``handlers`` module -> the modules it imports (any import: top level, in a
    function, under TYPE_CHECKING; ``from package import submodule`` points at the submodule)."""
    modules = {}
    for path in PRODUCT:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[name] |= {t for a in node.names if (t := known(a.name))}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                graph[name] |= {t for a in node.names if (t := known(f"{base}.{a.name}")) and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere():
    graph = _import_graph()
    assert "watcher.engine.session" in graph["watcher.engine.tick"]
    assert _cycles(graph) == []
    assert _cycles({**graph, "watcher.engine.session": graph["watcher.engine.session"] | {"watcher.engine.tick"}})


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


@pytest.mark.parametrize("module", ["watcher", "watcher.cli", "watcher.service", "watcher.engine", "handlers"])
def test_importing_the_package_leaves_the_environment_as_it_was(module: str):
    """No import side effect: the MLflow defaults are set by the entry point
    (``watcher.obs.environment.apply_mlflow_environment``), never by an import."""
    import subprocess
    import sys

    code = (f"import os; before = dict(os.environ); import importlib; importlib.import_module({module!r}); "
            "after = dict(os.environ); after.pop('_MLFLOW_TELEMETRY_SESSION_ID', None); "  # MLflow's own, at its import
            "assert before == after, sorted(set(after.items()) ^ set(before.items()))")
    env = {k: v for k, v in __import__("os").environ.items() if "MLFLOW" not in k and k != "DO_NOT_TRACK"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
