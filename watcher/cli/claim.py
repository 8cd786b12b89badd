"""``claim --model M --experiment E --reason R``: move a model's ownership on purpose.

The experiment (a name, or an id) becomes the one that feeds the model: the claim tag
(``registry-watcher.source_experiment``) is written and the move is recorded in the audit trail
(who, from which experiment to which, why). The running daemon's next experiment search keeps the
new owner's discovered watch and refuses the old one (``watch_refused``); its ticks check the claim
before any run is decided, so the old owner's runs stop feeding the model at once.
"""

from __future__ import annotations

from mlflow import MlflowClient

from watcher.cli.output import say, say_error
from watcher.config import WatcherConfig
from watcher.engine.ownership import ClaimError, move_claim
from watcher.engine.promotion import cli_user


def claim_model(client: MlflowClient, config: WatcherConfig, model: str, experiment: str, reason: str) -> int:
    """The ``claim`` verb: 0 when the experiment feeds the model now (or already did), 1 on an error."""
    try:
        record = move_claim(client, config, model, experiment, reason, cli_user())
    except ClaimError as exc:
        say_error(str(exc))
        return 1
    if record is None:
        say(f"{model}: '{experiment}' already feeds it; nothing changed")
        return 0
    say(f"{model}: now fed by {record.current} (was {record.previous or 'unclaimed'}); recorded in the audit trail")
    named = [w.experiment for w in config.watches if w.model_name == model]
    if named:
        say(f"note: the config's watches name {', '.join(named)} for {model}: those stay explicit owners")
    return 0
