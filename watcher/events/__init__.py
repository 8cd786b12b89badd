"""Outgoing events (issue 28): CloudEvents to CD pipelines, buses and chat, at least once, in order, replayable."""
