# registry-watcher: a slim image with a non-root user, /healthz as its health check.
#   docker build -t registry-watcher .
#   docker run --rm --stop-timeout 300 -v $PWD/config:/config -p 8080:8080 -e MLFLOW_TRACKING_URI=http://mlflow:5000 registry-watcher
# Linted in CI by hadolint (tests/test_dockerfile.py). The build itself is not tested there: no container
# runtime on the CI machine can pull the base image.
FROM python:3.11-slim

# WATCHER_HTTP__PORT turns the HTTP server on (health, readiness, metrics, webhooks) on 8080; the
# environment outranks the config file, so the HEALTHCHECK below, which reads the same variable, probes
# the port actually served.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WATCHER_HTTP__PORT=8080

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcher ./watcher
COPY handlers ./handlers
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin watcher \
    && mkdir -p /config /data \
    && chown 10001:10001 /data \
    && rm -rf /src

USER 10001:10001
WORKDIR /data
VOLUME ["/config", "/data"]
EXPOSE 8080

# python's urllib, since the slim image has no curl; a non-200 answer or no answer raises -> exit 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WATCHER_HTTP__PORT', '8080'), timeout=4)"]

# Exec form: registry-watcher is PID 1 and receives docker stop's SIGTERM itself (finishes the run in
# hand and any scoring in hand, exits 0): give docker run a --stop-timeout longer than a scoring, since
# Docker SIGKILLs after 10 s by default.
ENTRYPOINT ["registry-watcher"]
CMD ["run", "--config", "/config/watcher.yaml"]
