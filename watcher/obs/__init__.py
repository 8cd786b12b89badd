"""Observability, the foundation beside ``watcher.config``: structured logs (``logs``), secret
redaction (``redact``) and Prometheus metrics (``metrics``). Imports nothing else of the watcher."""
