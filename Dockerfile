# registry-watcher: a slim image with a non-root user.
#   docker build -t registry-watcher .
#   docker run --rm -v $PWD/config:/config -e MLFLOW_TRACKING_URI=http://mlflow:5000 registry-watcher
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcher ./watcher
COPY handlers ./handlers
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin watcher \
    && mkdir -p /config /data \
    && chown watcher:watcher /data \
    && rm -rf /src

USER watcher
WORKDIR /data
VOLUME ["/config", "/data"]

ENTRYPOINT ["registry-watcher"]
CMD ["run", "--config", "/config/watcher.yaml"]
