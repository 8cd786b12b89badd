"""A custom scoring handler that takes 30 s (``SLOW_SCORER_SECONDS``), for the scoring worker test."""

from __future__ import annotations

import os
import time
from pathlib import Path

from handlers.scoring import ScoringRequest, ScoringResult


def slow(request: ScoringRequest) -> ScoringResult:
    time.sleep(float(os.environ.get("SLOW_SCORER_SECONDS", "30")))
    out = Path(request.config.output_dir) / request.model_name / f"v{request.version}" / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("prediction\n1\n")
    return ScoringResult(rows=1, output_path=str(out))
