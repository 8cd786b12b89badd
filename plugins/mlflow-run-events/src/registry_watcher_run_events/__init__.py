"""registry-watcher's MLflow server plugin: a signed "run finished" event the moment a run ends.

Importing this package does nothing (``mlflow server`` imports it in its parent process to find the
factory); the hook is installed by the app factories in :mod:`registry_watcher_run_events.app`.
"""

__version__ = "0.1.0"
