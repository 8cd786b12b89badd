"""Handlers: the pluggable parts. Gates (pure: they return decisions and write nothing) and scoring engines.

A new gate goes in ``handlers/gates.py`` (built-in) or any importable module (custom, see
``handlers/base.py`` for the protocol).
"""
