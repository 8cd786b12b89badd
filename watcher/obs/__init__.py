"""Observability, the foundation beside ``watcher.config``: structured logs (``logs``) of the events
declared once in ``events``, secret redaction (``redact``) and Prometheus metrics (``metrics``).
Imports nothing else of the watcher."""
