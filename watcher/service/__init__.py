"""The running process: the daemon loop (``daemon``, ``poller``), the leader lock (``leader``), the
HTTP server (``http``, ``health``) and the webhook receiver (``webhooks``). It only triggers ticks;
what a tick does is ``watcher.engine``."""
