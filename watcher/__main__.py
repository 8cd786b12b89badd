"""``python -m watcher`` is the same as the ``registry-watcher`` console script (which sets the
MLflow environment first, ``watcher.obs.environment``)."""

from watcher.cli import main

raise SystemExit(main())
