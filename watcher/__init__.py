"""registry-watcher: MLflow runs -> validation gates -> registered versions -> aliases -> scoring.

Importing the package has no side effect: the MLflow environment the process runs with is set by
the entry point (``watcher.obs.environment.apply_mlflow_environment``, called by ``watcher.cli.main``).
"""

__version__ = "0.1.0"
