"""The base of every config model: unknown keys are errors, each field's docstring is its
description, and a loaded config is immutable. Also the backoff block, shared by polls and scoring."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A config block: ``extra="forbid"``, attribute docstrings as descriptions, frozen."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class RetryConfig(Strict):
    """Exponential backoff for a failed poll or a failed scoring."""

    initial_seconds: float = Field(2.0, gt=0)
    """First delay in seconds; 2 s rides out a blip (each failed poll already spent MLflow's own retries)."""
    max_seconds: float = Field(30.0, gt=0)
    """Cap in seconds; 30 s means runs are registered within ~30 s of a server's return after any outage,
    while a dead server still costs only ~2 cheap requests a minute."""
    multiplier: float = Field(2.0, ge=1)
    """Growth factor per consecutive failure; 2 is the usual doubling."""

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
        return min(self.max_seconds, self.initial_seconds * self.multiplier ** max(0, failures - 1))


