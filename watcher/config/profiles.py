"""Profiles that share a base: ``extends``.

A ``profiles`` entry (or a ``watches`` entry) may name another profile in ``extends``; it takes that
profile's keys, its own keys winning. Mappings merge key by key at every depth (``tags``,
``scoring``); any other value, lists included (``gates``), is replaced whole. A base may extend
another base. An unknown base, a cycle or a base that is not a name is a config error located at the
``extends`` key (``profiles.team_b.extends: unknown profile 'x' (known: default, strict)``).

:func:`resolve_extends` works on the raw file (before validation) and is idempotent: a resolved
entry keeps its ``extends`` (so ``check-config`` and ``status`` can say it), and resolving again
changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

EXTENDS = "extends"


class ProfileError(ValueError):
    """An ``extends`` that names no profile, names one in a cycle, or is not a name; the message
    starts with the key's location."""


def merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` overlaid with ``child``: mappings merge recursively, other values (lists too) are
    replaced; both inputs are left as they were (the result shares nothing with them)."""
    merged = copy.deepcopy(dict(base))
    for key, value in child.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _resolved(name: str, profiles: Mapping[str, Any], chain: tuple[str, ...], done: dict[str, Any]) -> Any:
    """Profile ``name`` with its bases' keys under its own (memoised in ``done``); a block that is not
    a mapping is returned as it is, for the schema to name."""
    if name in done:
        return done[name]
    block = profiles[name]
    if not isinstance(block, Mapping):
        return block
    base = block.get(EXTENDS)
    if base is None:
        done[name] = dict(block)
        return done[name]
    where = f"profiles.{name}.{EXTENDS}"
    _check_base(where, base, profiles)
    path = (*chain, name)
    if base in path:
        raise ProfileError(f"{where}: a cycle of extends: {' -> '.join((*path[path.index(base):], base))}")
    parent = _resolved(base, profiles, (*chain, name), done)
    done[name] = merge(parent, block) if isinstance(parent, Mapping) else dict(block)
    return done[name]


def _check_base(where: str, base: object, profiles: Mapping[str, Any]) -> None:
    if not isinstance(base, str) or not base.strip():
        raise ProfileError(f"{where}: must be the name of a profile")
    if base not in profiles:
        known = ", ".join(sorted(str(k) for k in profiles)) or "none"
        raise ProfileError(f"{where}: unknown profile '{base}' (known: {known})")


def resolve_extends(data: Any) -> Any:
    """The raw config with every ``extends`` resolved (``profiles`` and ``watches`` entries);
    anything that is not the expected shape is left to the schema. Raises :class:`ProfileError`."""
    if not isinstance(data, Mapping):
        return data
    profiles = data.get("profiles")
    profiles = profiles if isinstance(profiles, Mapping) else {}
    done: dict[str, Any] = {}
    out = dict(data)
    if profiles:
        out["profiles"] = {name: _resolved(name, profiles, (), done) for name in profiles}
    watches = data.get("watches")
    if isinstance(watches, list) and any(isinstance(w, Mapping) and w.get(EXTENDS) is not None for w in watches):
        out["watches"] = [_watch(i, w, profiles, done) for i, w in enumerate(watches)]
    return out


def _watch(index: int, block: Any, profiles: Mapping[str, Any], done: dict[str, Any]) -> Any:
    if not isinstance(block, Mapping) or block.get(EXTENDS) is None:
        return block
    base = block[EXTENDS]
    _check_base(f"watches.{index}.{EXTENDS}", base, profiles)
    parent = _resolved(base, profiles, (), done)
    return merge(parent, block) if isinstance(parent, Mapping) else dict(block)
