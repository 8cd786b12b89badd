"""``python -m watcher`` is the same as the ``registry-watcher`` console script."""

from watcher.cli import main

raise SystemExit(main())
