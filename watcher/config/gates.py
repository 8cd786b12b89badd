"""Gate configuration: the schema of every built-in gate, and of custom handler gates.

The built-in gates form a registry. Declaring a subclass of :class:`GateSpec` with its YAML key
(``class MyGate(GateSpec, key="my_key")``) is all the config side needs: the ``gates`` union, its
discriminator and its error message are built from the registry. The gate's function is
registered beside it in ``handlers/gates.py`` with ``@builtin(MyGate)`` (a test checks that every
spec has one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from watcher.config.base import Strict
from watcher.config.imports import import_callable

DEFAULT_TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)
HANDLER_KEY = "handler"
BUILTIN_GATES: dict[str, type[GateSpec]] = {}
"""YAML key -> config class of each built-in gate, in declaration order."""


class GateSpec(Strict):
    """A built-in gate's config; ``key`` is the YAML key that selects it (and registers the class)."""

    key: ClassVar[str]

    def __init_subclass__(cls, key: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if key:
            cls.key = key
            BUILTIN_GATES[key] = cls


class MetricGate(GateSpec, key="metric"):
    """Reject unless a run metric lies within [min, max]; a missing or NaN metric is a rejection."""

    metric: str
    """Run metric name, e.g. ``recall`` (recall first for churn: missing a churner costs most)."""
    min: float | None = None
    """Inclusive lower bound, unitless like the metric; unset means no lower bound."""
    max: float | None = None
    """Inclusive upper bound, unitless like the metric; unset means no upper bound."""

    @model_validator(mode="after")
    def _one_bound(self) -> MetricGate:
        if self.min is None and self.max is None:
            raise ValueError("a metric gate needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        return self


class FeaturesGate(GateSpec, key="features"):
    """Reject unless the model signature's input names are exactly this set."""

    features: list[str] = Field(min_length=1)
    """Expected input column names; order does not matter, extras and missing both reject."""


class ChampionGate(GateSpec, key="champion"):
    """Challenger vs champion, with ``mlflow.models.MetricThreshold`` semantics."""

    champion: str
    """Metric compared with the run behind the production alias; no production version passes."""
    min_delta: float = 0.0
    """Minimum absolute improvement (metric units); 0.0 means 'not worse than the champion'."""
    min_relative_delta: float | None = None
    """Optional minimum relative improvement (0.05 = 5 %); unset because most teams gate on delta."""
    greater_is_better: bool = True
    """Direction of the metric; true for recall/precision/AUC, false for losses."""


class DataGate(GateSpec, key="data"):
    """Training-data alignment: the run's logged dataset input (``mlflow.log_input``)."""

    data: str | None
    """Required dataset name; null accepts any name (still checks columns)."""
    context: str | None = None
    """Required ``mlflow.data.context`` tag (e.g. ``training``); null accepts any context."""
    columns: list[str] = Field(default_factory=list)
    """Columns the dataset schema must contain; empty means no column check."""
    exact: bool = False
    """If true the schema must hold exactly ``columns`` (plus ``targets``), not a superset."""
    targets: list[str] = Field(default_factory=list)
    """Label columns, ignored by ``exact`` and ``match_signature``; e.g. ``[label]``."""
    match_signature: bool = False
    """If true the dataset's non-target columns must equal the model signature's inputs."""
    required: bool = True
    """If true a run with no matching dataset input is rejected; false lets it pass."""


class SafeSerializationGate(GateSpec, key="safe_serialization"):
    """Reject a model whose flavor deserializes with pickle/cloudpickle (loading it runs code)."""

    safe_serialization: bool = True
    """True turns the gate on; false keeps it in the file but lets every model pass (e.g. a trial)."""
    trusted_types: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUSTED_TYPES))
    """Types a skops model may ask its loader to trust; the watcher owns this list, never the model.
    Default: what the seed's RandomForest needs (skops reports only ``sklearn.tree._tree.Tree``)."""


class CustomGate(BaseModel):
    """``{handler: "package.module:callable", ...kwargs}``; extra keys are passed as kwargs."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True, frozen=True)

    handler: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    """Import path ``package.module:callable``; checked at config load so typos fail early."""

    @field_validator("handler")
    @classmethod
    def _importable(cls, value: str) -> str:
        import_callable(value)
        return value

    @property
    def kwargs(self) -> dict[str, Any]:
        """The extra keys, passed to the callable as keyword arguments."""
        return dict(self.model_extra or {})


def gate_keys() -> list[str]:
    """Every key that selects a gate: the built-ins in declaration order, then ``handler``."""
    return [*BUILTIN_GATES, HANDLER_KEY]


def _gate_kind(value: Any) -> str | None:
    if isinstance(value, CustomGate):
        return HANDLER_KEY
    if isinstance(value, GateSpec):
        return type(value).key
    if isinstance(value, dict):
        present = [key for key in gate_keys() if key in value]
        return present[0] if len(present) == 1 else None
    return None


def _gate_union() -> Any:
    members = [Annotated[cls, Tag(key)] for key, cls in BUILTIN_GATES.items()]
    members.append(Annotated[CustomGate, Tag(HANDLER_KEY)])
    return Annotated[
        Union[tuple(members)],
        Discriminator(_gate_kind, custom_error_type="unknown_gate",
                      custom_error_message="unknown gate: give exactly one of " + ", ".join(gate_keys())),
    ]


if TYPE_CHECKING:
    GateConfig = GateSpec | CustomGate
else:
    GateConfig = _gate_union()
