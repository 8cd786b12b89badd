"""What an idle tick remembers of the fleet, so that 1,000 watches cost about what one costs.

* :class:`ModelCache`: the watched registered models, kept across ticks. The first tick reads
  them all; each later tick re-reads, in one batched search, a rolling window of at most
  :data:`MODEL_WINDOW` of them, plus every model its tick may have to act on: those of
  experiments with work, those whose watch did something last tick (it may have written) and
  those not found yet. A fleet of up to :data:`MODEL_WINDOW` models is so read whole every tick,
  as before; a larger one sees an alias moved outside the watcher (MLflow bumps no timestamp for
  an alias or tag write, so nothing cheaper can tell) within ``ceil(models / MODEL_WINDOW)``
  ticks. A watch that takes its candidate path with a model not read in this tick reads it
  afresh first (``Snapshot.fresh``).
* ``watcher.engine.quiet.QuietWatches``: a watch whose last visit did nothing is not visited again while nothing
  it reads has changed: the same watch settings, the same model (:attr:`ModelCache.generation`),
  the same audit entries of its model (``AuditCache.stamp``), no run to decide, no run event, no
  ``ha`` lock to check, no approval board and no scoring failure waiting for its retry time. Its
  report is an empty one. Any doubt visits the watch: the skip only ever saves a visit whose
  every step would have found nothing to do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Set
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.store import batch_reads, registry

MODEL_WINDOW = 100
"""Models re-read per tick beside those with work: a fleet up to this size is read whole each tick."""


def _content(model: RegisteredModel) -> tuple[dict[str, str], dict[str, str]]:
    return registry.tags_of(model), registry.aliases_of(model)


@dataclass
class ModelCache:
    """Registered models by name, kept across ticks by one process (a restart loses only requests)."""

    models: dict[str, RegisteredModel] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)
    """Model name -> a number that changes whenever a read shows its tags or aliases changed."""
    asked: set[str] = field(default_factory=set)
    """Names read at least once (found or not)."""
    dirty: set[str] = field(default_factory=set)
    """Names to read in the next tick whatever the window (their watch did something)."""
    starts: dict[tuple[str, str, int], tuple[RegisteredModel | None, int]] = field(default_factory=dict)
    """(model, experiment id, overlap) -> (the model object, where its search starts): the snapshot's memo."""
    uri: str = ""
    _order: tuple[str, ...] = ()
    _offset: int = 0

    def fill(self, client: MlflowClient, names: Collection[str]) -> set[str]:
        """Read the names never read (the first tick, new watches); returns them."""
        uri = str(getattr(client, "tracking_uri", ""))
        if uri != self.uri:  # another tracking server (a reload): nothing known holds
            self.models, self.asked, self.dirty, self.starts, self.uri = {}, set(), set(), {}, uri
        new = {name for name in names if name not in self.asked}
        if new:
            self._read(client, new)
        return new

    def refresh(self, client: MlflowClient, names: Set[str], busy: Iterable[str] | None,
                done: Collection[str]) -> frozenset[str]:
        """Re-read the window's models, the dirty ones, those of ``busy`` (None: every one) and the
        missing ones, less ``done`` (read this tick already); returns every name read this tick."""
        due = set(names) if busy is None else {*self._window(names), *busy,
                                               *(n for n in self.dirty if n in names),
                                               *(n for n in names if n not in self.models)}
        due.difference_update(done)
        if due:
            self._read(client, due)
        self.dirty.difference_update(names)
        return frozenset(due) | frozenset(done)

    def view(self, names: Set[str]) -> dict[str, RegisteredModel]:
        """The models of ``names`` that exist (a copy: the snapshot outlives the tick)."""
        if self.models.keys() <= names:  # the usual case: the cache holds the fleet and nothing else
            return dict(self.models)
        return {name: self.models[name] for name in names if name in self.models}

    def _window(self, names: Set[str]) -> tuple[str, ...]:
        if len(names) <= MODEL_WINDOW:
            return tuple(names)
        if len(self._order) != len(names) or not names >= set(self._order):
            self._order, self._offset = tuple(sorted(names)), 0
        start = self._offset % len(self._order)
        self._offset = start + MODEL_WINDOW
        return (self._order + self._order)[start:start + MODEL_WINDOW]

    def _read(self, client: MlflowClient, names: set[str]) -> None:
        found = batch_reads.models_by_name(client, names)
        for name in names:
            model = found.get(name)
            old = self.models.get(name)
            if model is None:
                self.models.pop(name, None)
            else:
                self.models[name] = model
            if (old is None) != (model is None) or (old is not None and model is not None
                                                    and _content(old) != _content(model)):
                self.generation[name] = self.generation.get(name, 0) + 1
        self.asked.update(names)
