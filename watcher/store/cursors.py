"""The per-experiment cursor: the end time of the newest run whose side effects all succeeded.

It is a registered-model tag (``watcher.cursor.<experiment id>``, versioned JSON), so it lives on
the model it concerns and survives restarts. It advances only after the runs it passes are
decided; a crash before that re-reads them, and each decision is checked before it is acted on.
"""

from __future__ import annotations

from mlflow import MlflowClient

from watcher.store import keys
from watcher.store.codec import dump, load, now_iso


def read_cursor(tags: dict[str, str], experiment_id: str) -> int:
    """Cursor (epoch ms of the last decided run's end time), 0 when none."""
    data = load(tags.get(keys.cursor_key(experiment_id)))
    return int(data["end_time"]) if data else 0


def save_cursor(client: MlflowClient, model_name: str, experiment_id: str, old: int, new: int) -> int:
    """Write the cursor when it moves forward; returns the cursor now in force."""
    if new > old:
        client.set_registered_model_tag(model_name, keys.cursor_key(experiment_id),
                                        dump({"end_time": new, "updated_at": now_iso()}))
    return max(old, new)
