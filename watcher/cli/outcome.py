"""What ``once`` says went wrong: one line per watch that errored, failed or was refused.

``once`` exits 1 when this list is not empty, so a pass in which every watch was refused (or one
failed) is never reported as a success. The states are the poller's (``Poller.watch_states``: a
watch ``failed`` on its own, with its reason, or ``refused`` because another experiment owns the
model or its tag cannot make a watch); a run that errored inside a watch that did not fail is said too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.engine import TickReport
    from watcher.service.poller import Poller


def once_problems(poller: Poller, report: TickReport | None) -> list[str]:
    """The ``error:`` lines of one ``once`` pass (empty: it went well)."""
    problems = []
    failed = set()
    for state in poller.watch_states():
        if state.state == "failed":
            failed.add((state.experiment, state.model))
            problems.append(f"watch {state.watch} failed: {state.reason}")
        elif state.state == "refused":
            problems.append(f"watch {state.watch} refused: {state.reason}")
    if report is None:
        return [*problems, "the pass did not run (backoff or shutdown)"]
    problems += [f"watch {w.experiment} -> {w.model_name} errored: {'; '.join(w.errors)}"
                 for w in report.watches if w.errors and (w.experiment, w.model_name) not in failed]
    return problems
