"""Shared pieces of the benchmarks: a real server, tiny seed-pattern runs, the daemon as a process,
and CPU/RSS read from /proc (no psutil needed). Figures are measured, never asserted."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore")  # MLflow's schema hints while the benches log runs
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    """Resident set size of one process, MiB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def children(pid: int) -> list[int]:
    """Direct and indirect child pids."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").iterdir():
            kids = (task / "children").read_text().split()
            found += [int(k) for k in kids]
            todo += [int(k) for k in kids]
    return found


def server_worker_pid(server_pid: int) -> int:
    """The uvicorn process that serves requests under ``mlflow server`` (not the job consumers)."""
    for pid in children(server_pid):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"uvicorn" in cmd or b"gunicorn" in cmd:
            return pid
    return server_pid


def write_config(path: Path, uri: str, experiment: str, model: str, poll: float = 1.0, extra: str = "") -> Path:
    """A watcher config with the README's gates (recall, features, champion)."""
    from demo.churn import FEATURES

    path.write_text(f"""tracking_uri: {uri}
poll_interval_seconds: {poll}
log: {{level: INFO, format: json}}
{extra}watches:
  - experiment: {experiment}
    model_name: {model}
    gates:
      - metric: recall
        min: 0.0
      - features: [{", ".join(FEATURES)}]
      - champion: recall
        min_delta: -1.0
    tags: {{deployment_mode: batch_inference_only}}
""")
    return path


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen:
    """``registry-watcher run`` as its own process, JSON log lines to ``log_path``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config)],
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # noqa: SIM115


def events(log_path: Path) -> Iterator[dict]:
    """Parsed JSON lines of a daemon log so far."""
    for line in log_path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


class LogTail:
    """A daemon log read incrementally: each call parses only the lines added since the last one,
    so a bench waiting on an event every 20 ms does not compete with the daemon for the CPU."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.rest = path, 0, b""
        self.seen: list[dict] = []

    def __call__(self) -> list[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        *lines, self.rest = (self.rest + chunk).split(b"\n")
        for line in lines:
            try:
                self.seen.append(json.loads(line))
            except ValueError:
                continue
        return self.seen


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> object:
    """Poll ``predicate`` until truthy or ``timeout`` seconds; returns its value (None on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def epoch(iso: str) -> float:
    """Epoch seconds of a log timestamp."""
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    """One line naming the machine the figures came from."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, Python {sys.version.split()[0]}"
