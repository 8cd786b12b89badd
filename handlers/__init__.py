"""Handlers: the built-in gates, the gate protocol, registration and tagging, and scoring.

A new gate goes in ``handlers/gates.py`` (built-in) or any importable module (custom, see
``handlers/base.py`` for the protocol).
"""

import watcher  # noqa: F401  (sets MLflow's logging environment before mlflow is imported)
