"""One tick: finding candidate runs, applying gates, the registration steps, the production step,
alias policies, promote and rollback. The service layer only triggers :func:`reconcile_once`.

* ``tick``: :func:`reconcile_once` over every watch (its options: :class:`TickOptions`);
* ``session``: the :class:`Session` memo kept across ticks, and one watch's frozen context;
* ``watch``: one watch's candidates from its cursor; ``runs``: a page decided in three phases
  (``verdicts``: what each phase returns; ``staging``: the staging move and the decisions);
  ``lineage``: the tags a registered version carries;
* ``production``: the production step; ``aliases``: settling an alias (executes ``policy``, the
  pure decision); ``promotion``: promote and rollback; ``history``: reading the history;
* ``report``: what a tick did.
"""

from watcher.engine.report import TickReport, WatchReport
from watcher.engine.session import Session
from watcher.engine.tick import TickOptions, reconcile_once

__all__ = ["Session", "TickOptions", "TickReport", "WatchReport", "reconcile_once"]
