"""The console (issue 29): the fleet in a browser, server-rendered from what the daemon knows after its last tick."""
