"""A custom scoring handler that holds until the test lets it go, for the scoring worker test.

``STARTED`` is set when a scoring begins; the handler then waits on ``RELEASE`` (at most
``LIMIT_SECONDS``, so a failing test cannot hang the suite). The test and the worker share this
module object (``import slow_scorer`` and the config's ``handler: slow_scorer:slow``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from handlers.scoring import ScoringRequest, ScoringResult

STARTED = threading.Event()
RELEASE = threading.Event()
LIMIT_SECONDS = 120.0


def slow(request: ScoringRequest) -> ScoringResult:
    STARTED.set()
    if not RELEASE.wait(LIMIT_SECONDS):
        raise TimeoutError(f"the test never released the scoring within {LIMIT_SECONDS:.0f} s")
    out = Path(request.config.output_dir) / request.model_name / f"v{request.version}" / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("prediction\n1\n")
    return ScoringResult(rows=1, output_path=str(out))
