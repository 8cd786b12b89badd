"""CLI start-up: wall-clock seconds from command to exit of ``status``, ``history`` and ``promote``
against a local ``mlflow server`` (SQLite), median of N runs each, plus the import of the CLI alone.

    PYTHONPATH=$PWD python bench/bench_cli.py [N]      (default N=5)

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


def _setup(workdir: Path) -> tuple[object, Path, str]:
    from mlflow import MlflowClient

    from watcher.testing import start_mlflow_server

    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir)
    client = MlflowClient(uri, uri)
    model = f"bench_cli_{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    run = client.create_run(client.create_experiment(f"bench_cli_{uuid.uuid4().hex[:6]}"))
    for _ in range(2):
        client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    config = workdir / "watcher.yaml"
    config.write_text(f"tracking_uri: {uri}\nwatches:\n  - experiment: bench_cli\n    model_name: {model}\n")
    return proc, config, model


def _argv(verb: str, config: Path, model: str, i: int) -> list[str]:
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
    n = int(sys.argv[1]) if len(sys.argv) > 1 and not profile else 5
    code = os.environ.get("BENCH_CLI_ROOT", str(ROOT))  # which checkout's CLI to time (e.g. main, for "before")
    env = {**os.environ, "PYTHONPATH": code, "REGISTRY_WATCHER_USER": "bench"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as tmp:
        proc, config, model = _setup(Path(tmp))
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
                    results.setdefault((label, "import"), []).append(_time_import(run_env))
                    for verb in ("status", "history", "promote"):
                        moves = len(results.get((label, "promote"), [])) + sum(
                            len(v) for k, v in results.items() if k[1] == "promote" and k[0] != label)
                        results.setdefault((label, verb), []).append(_time(_argv(verb, config, model, moves), run_env))
            for (label, verb), times in results.items():
                wall = statistics.median(t[0] for t in times)
                cpu = statistics.median(t[1] for t in times)
                print(f"{label:8s} {verb:8s} wall median {wall:.2f} s  cpu median {cpu:.2f} s  (n={n})")
        finally:
            stop(proc)  # type: ignore[arg-type]


def _time_import(env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import watcher.cli"], env=env, check=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
