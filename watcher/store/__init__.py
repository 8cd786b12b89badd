"""The only code that reads or writes MLflow state.

* ``keys``: every tag key; ``codec``: versioned JSON values, UTC times (the one time parser);
* ``client``: the ``MlflowClient`` the watcher uses; ``errors``: is a failure an outage;
* ``experiments``: look-up and get-or-create; ``models``: a run's model and its MLmodel file;
* ``search``: the candidate-run query; ``runs``: decision tags and run reads; ``attempts``: the
  per-run failure counter; ``cursors``: the per-experiment cursor;
* ``registry``: registered models, versions, their tags and aliases;
* ``audit``: the audit trail of alias moves (:class:`~watcher.store.audit.AuditEntry`);
  ``migration``: the legacy history tag carried into it once;
* ``scoring_records``: what was scored or failed, and the scoring runs;
* ``webhooks``: the MLflow webhooks pointing at this watcher.

A check (``tests/test_architecture.py``) keeps every ``MlflowClient`` call inside this package.
"""
