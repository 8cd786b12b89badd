"""Scoring orchestration: once per production move, off the poll thread when the daemon runs.

* ``runner``: decides whether a move still needs scoring, refuses a version it must not load,
  runs the engine or custom handler and records the outcome (``watcher.store.scoring_records``);
* ``worker``: the daemon's scoring thread;
* ``engines``: the built-in engines (``handlers.scoring``, ``handlers.spark_scoring``) by name,
  and stopping the ones that were started.
"""
