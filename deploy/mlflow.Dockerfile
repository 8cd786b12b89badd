# The MLflow tracking server of deploy/compose.yaml: MLflow with the PostgreSQL (psycopg 3) and S3 (boto3)
# clients, the versions registry-watcher is tested against (tests/test_topology.py), and the run-events
# plugin (plugins/mlflow-run-events: `--app-name registry-watcher`). Build context: the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY plugins/mlflow-run-events /opt/mlflow-run-events
RUN pip install "mlflow==3.17.2" "psycopg[binary]==3.3.9" "boto3==1.44.8" /opt/mlflow-run-events \
    && useradd --create-home --uid 10002 --shell /usr/sbin/nologin mlflow

USER 10002:10002
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
