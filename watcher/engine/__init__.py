"""One tick: finding candidate runs, applying gates, the registration steps, the production step,
alias policies, promote and rollback. The service layer only triggers :func:`reconcile_once`.

* ``tick``: :func:`reconcile_once` over every watch, and the :class:`Session` memo;
* ``watch``: one watch's candidates from its cursor; ``runs``: a page decided in three phases;
  ``lineage``: the tags a registered version carries;
* ``production``: the production step; ``aliases``: settling an alias (executes ``policy``, the
  pure decision); ``promotion``: promote and rollback; ``history``: reading the history;
* ``report``: what a tick did.
"""

from watcher.engine.report import TickReport, WatchReport
from watcher.engine.tick import Session, reconcile_once

__all__ = ["Session", "TickReport", "WatchReport", "reconcile_once"]
