"""What ``once`` says went wrong: one line per watch that errored, failed or was refused.

``once`` exits 1 when this list is not empty, so a pass in which every watch was refused (or one
failed) is never reported as a success.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.engine import TickReport
    from watcher.service.poller import Poller


def once_problems(poller: Poller, report: TickReport | None) -> list[str]:
    """The ``error:`` lines of one ``once`` pass (empty: it went well)."""
    if report is None:
        return ["the pass did not run (backoff or shutdown)"]
    problems = [f"watch of model '{w.model_name}' (experiment '{w.experiment}') failed: {'; '.join(w.errors)}"
                for w in report.watches if w.errors]
    problems += [f"watch of experiment '{name}' refused: {reason}"
                 for name, reason in sorted(poller.discovery.refused.items())]
    return problems
