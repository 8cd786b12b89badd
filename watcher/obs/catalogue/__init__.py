"""Each capability's own log events, merged into :data:`watcher.obs.events.CATALOGUE` after the core's."""
