"""MLflow's process-wide settings for the watcher's own process, applied once, explicitly, at start.

Importing ``watcher`` (or any of its modules) changes nothing in ``os.environ``: a library user or a
test that imports a module keeps MLflow's behaviour as it was. The entry points call
:func:`apply_mlflow_environment` first, before MLflow is imported: the console script and
``python -m watcher`` (``watcher.cli.main``), the test suite (``tests/conftest.py`` and the
subprocess helpers) and the bench scripts. Each variable is a default: a value already set wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

MLFLOW_ENVIRONMENT: dict[str, str] = {
    # every line goes through structlog as JSON (``watcher.obs.logs``), not MLflow's own handler
    "MLFLOW_CONFIGURE_LOGGING": "false",
    # no progress bars on stderr between the JSON lines
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # no usage telemetry from an unattended daemon (MLflow's own switch, and the common one)
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # set_terminated would print "View run ... at: URL" to stdout (and fetch the run for it): that
    # corrupts the CLI's JSON output (history --json after an audit-trail write) and costs a request.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # Fail fast on a dead server and let the daemon's own backoff retry (MLflow's default is 7 retries
    # with a growing sleep, which would stall one poll for minutes).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
"""Variable -> the default the watcher's process runs with."""


def apply_mlflow_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Set each of :data:`MLFLOW_ENVIRONMENT` in ``environ`` (default ``os.environ``) unless already
    set. Call it once at process start, before ``mlflow`` is imported: MLflow reads some of them
    (its logging set-up, telemetry) at import."""
    target = os.environ if environ is None else environ
    for name, value in MLFLOW_ENVIRONMENT.items():
        target.setdefault(name, value)
