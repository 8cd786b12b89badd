"""CLI start-up: wall-clock seconds from command to exit of each verb against a local ``mlflow server``
(SQLite), median of N runs each, beside a bare ``python -c "import mlflow"`` and the import of the CLI alone.

    PYTHONPATH=$PWD python bench/bench_cli.py [N] [--fleet M]      (default N=5; M: also status over M models)

The verbs: ``--help`` and ``check-config --offline`` (no MLflow import at all), ``check-config``,
``status`` (one model), ``history``, ``promote``; with ``--fleet M`` also ``status`` over M models found by
experiment tag (``status@M``), set up once (M experiments and M registered models, eight requests at a time).

``BENCH_CLI_ROOTS=before=/work/main,after=$PWD`` times several checkouts' CLIs, interleaved (the
before/after figures); wall-clock and CPU (user+system) medians are printed;
``--profile VERB`` prints the top of a cProfile of one in-process run of VERB instead.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _fleet(client: object, tag: str, size: int) -> None:
    """``size`` experiments tagged with their model, each model registered and claimed (an idle fleet)."""
    from concurrent.futures import ThreadPoolExecutor

    from watcher.store.keys import SOURCE_EXPERIMENT

    def one(i: int) -> None:
        model = f"{tag}_model_{i:05d}"
        experiment = client.create_experiment(f"{tag}_{i:05d}", tags={f"{tag}.model": model})  # type: ignore[attr-defined]
        # claimed, as the daemon's first discovery leaves every model of a running fleet
        client.create_registered_model(model, tags={SOURCE_EXPERIMENT: experiment})  # type: ignore[attr-defined]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(size)))


def _setup(workdir: Path, fleet: int = 0) -> tuple[object, Path, str]:
    from mlflow import MlflowClient

    from watcher.testing import start_mlflow_server

    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir, workers=4)
    client = MlflowClient(uri, uri)
    model = f"bench_cli_{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    run = client.create_run(client.create_experiment(f"bench_cli_{uuid.uuid4().hex[:6]}"))
    for _ in range(2):
        client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    config = workdir / "watcher.yaml"
    config.write_text(f"tracking_uri: {uri}\nwatches:\n  - experiment: bench_cli\n    model_name: {model}\n")
    if fleet:
        tag = f"bench_fleet_{uuid.uuid4().hex[:6]}"
        _fleet(client, tag, fleet)
        (workdir / "fleet.yaml").write_text(f"tracking_uri: {uri}\ndiscover: {{tag: {tag}.model}}\n"
                                            "profiles:\n  default: {gates: [{metric: recall, min: 0.2}]}\n")
    return proc, config, model


def _argv(verb: str, config: Path, model: str, i: int) -> list[str]:
    if verb == "--help":
        return ["--help"]
    if verb in ("check-config", "check-config --offline"):
        return [*verb.split(), "--config", str(config)]
    if verb.startswith("status@"):
        return ["status", "--config", str(config.parent / "fleet.yaml")]
    if verb == "status":
        return ["status", "--config", str(config)]
    if verb == "history":
        return ["history", "--model", model, "--config", str(config)]
    return ["promote", "--model", model, "--version", str(1 + i % 2), "--force", "--reason", "bench",
            "--config", str(config)]


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall-clock, CPU user+system) seconds of one CLI process; CPU is steadier on a loaded machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "watcher", *argv], env=env, capture_output=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    from watcher.testing import stop

    profile = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--profile" else None
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 5
    fleet = int(sys.argv[sys.argv.index("--fleet") + 1]) if "--fleet" in sys.argv else 0
    verbs = ["--help", "check-config --offline", "check-config", "status", "history", "promote",
             *([f"status@{fleet}"] if fleet else [])]
    code = os.environ.get("BENCH_CLI_ROOT", str(ROOT))  # which checkout's CLI to time (e.g. main, for "before")
    env = {**os.environ, "PYTHONPATH": code, "REGISTRY_WATCHER_USER": "bench"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as tmp:
        proc, config, model = _setup(Path(tmp), fleet)
        try:
            if profile:
                import cProfile
                import pstats

                from watcher.cli import main as cli

                cProfile.runctx("cli(argv)", globals(), {"cli": cli, "argv": _argv(profile, config, model, 0)},
                                str(Path(tmp) / "prof"))
                pstats.Stats(str(Path(tmp) / "prof")).sort_stats("cumulative").print_stats(40)
                return
            roots = dict(item.split("=", 1) for item in os.environ.get("BENCH_CLI_ROOTS", f"this={code}").split(","))
            results: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for i in range(n):  # interleaved, so every checkout sees the same machine load
                for label, root in roots.items():
                    run_env = {**env, "PYTHONPATH": root}
                    results.setdefault(("-", "import mlflow"), []).append(_time_import(run_env, "mlflow"))
                    results.setdefault((label, "import watcher.cli"), []).append(_time_import(run_env))
                    for verb in verbs:
                        moves = len(results.get((label, "promote"), [])) + sum(
                            len(v) for k, v in results.items() if k[1] == "promote" and k[0] != label)
                        results.setdefault((label, verb), []).append(_time(_argv(verb, config, model, moves), run_env))
            for (label, verb), times in results.items():
                wall = statistics.median(t[0] for t in times)
                cpu = statistics.median(t[1] for t in times)
                print(f"{label:8s} {verb:24s} wall median {wall:.2f} s  cpu median {cpu:.2f} s  (n={len(times)})")
        finally:
            stop(proc)  # type: ignore[arg-type]


def _time_import(env: dict[str, str], module: str = "watcher.cli") -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
