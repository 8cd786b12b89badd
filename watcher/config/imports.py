"""``package.module:attr`` import paths, used by config validation, gates and scoring.

It sits at the bottom of the import graph (standard library only), so ``watcher.config`` and the
``handlers`` package can both use it without importing each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["import_callable"]


def import_callable(path: str) -> Callable[..., Any]:
    """Import ``package.module:attr.attr``; raise ValueError naming the path when it fails."""
    module_name, _, attr_path = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import '{path}': {exc}") from exc
    if not callable(obj):
        raise ValueError(f"'{path}' is not callable")
    found: Callable[..., Any] = obj
    return found
