"""The outputs of outgoing events, and :func:`make_output`, which picks one by its config's type.

``make_output`` lives here rather than beside the event model so that the model stays a leaf: each
output imports the model, and this package imports the outputs (lazily, so that nats-py loads only
when a ``nats`` output is configured).
"""

from __future__ import annotations

from watcher.config.events import HttpOutputConfig, NatsOutputConfig, SlackOutputConfig
from watcher.events.model import Output


def make_output(config: HttpOutputConfig | NatsOutputConfig | SlackOutputConfig, ui_url: str | None = None) -> Output:
    """The output of one config; ``ui_url``: the MLflow UI base URL for Slack links."""
    if isinstance(config, NatsOutputConfig):
        from watcher.events.outputs.nats import NatsOutput

        return NatsOutput(config)
    if isinstance(config, SlackOutputConfig):
        from watcher.events.outputs.slack import SlackOutput

        return SlackOutput(config, ui_url)
    from watcher.events.http import HttpOutput

    return HttpOutput(config)
