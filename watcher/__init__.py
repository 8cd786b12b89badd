"""registry-watcher: MLflow runs -> validation gates -> registered versions -> aliases -> scoring.

Importing this package first turns off MLflow's own log handler and its artifact progress bars,
so that every line the process writes goes through structlog as JSON (see ``watcher.logs``).
"""

import os

os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# set_terminated would print "View run ... at: URL" to stdout (and fetch the run for it): that
# corrupts the CLI's JSON output (history --json after an audit-trail write) and costs a request.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# Fail fast on a dead server and let the daemon's own backoff retry (MLflow's default is 7 retries
# with a growing sleep, which would stall one poll for minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

__version__ = "0.1.0"
