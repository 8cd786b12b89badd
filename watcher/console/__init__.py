"""The console (issue 29): the fleet in a browser, server-rendered from what the daemon knows after its last tick."""

from watcher.console.routes import Console
from watcher.console.view import FleetView, ModelRow, Providers, RefusedWatch

__all__ = ["Console", "FleetView", "ModelRow", "Providers", "RefusedWatch"]
