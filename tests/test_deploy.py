"""Deploying it (issue 18, points 1 and 6): the Kubernetes base renders (a small renderer here,
cross-checked with ``kubectl kustomize`` when it is installed) and validates offline against the
Kubernetes 1.30 schemas (``kubernetes-validate``, strict; the ServiceMonitor CRD against a schema of
its own); the Prometheus rules parse and name only metrics the daemon exports; the ``docker run``
example has a ``--stop-timeout``; the Kubernetes config loads with the Secret's values from the environment."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from kustomize_lite import normalized, render
from prometheus_client import REGISTRY

from watcher.config import load_config
from watcher.obs import (
    metrics,
    metrics_approvals,  # noqa: F401 - its series are exported too
    metrics_events,  # noqa: F401 - its series are exported too (issue 28)
)

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30"
SERVICE_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"], "properties": {
            "selector": {"type": "object"}, "namespaceSelector": {"type": "object"}, "jobLabel": {"type": "string"},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string"}, "targetPort": {}, "path": {"type": "string"},
                    "scheme": {"enum": ["http", "https"]},
                    "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                    "scrapeTimeout": {"type": "string"}, "honorLabels": {"type": "boolean"},
                    "relabelings": {"type": "array"}, "metricRelabelings": {"type": "array"}}}}}}}}


def _validate(doc: dict) -> str:
    try:
        return kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor"), doc["kind"]
        jsonschema.Draft202012Validator(SERVICE_MONITOR).validate(doc)
        return "crd"


@pytest.fixture(scope="module")
def docs() -> dict:
    rendered = normalized(render(BASE))
    kubectl = shutil.which("kubectl")
    if kubectl:  # the real kustomize agrees with the small renderer
        out = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, check=True).stdout
        assert normalized([d for d in yaml.safe_load_all(out) if d]) == rendered
    return rendered


def test_every_manifest_is_valid_against_the_kubernetes_schemas(docs):
    assert set(docs) == {("Namespace", "registry-watcher"), ("ConfigMap", "registry-watcher-config"),
                         ("Deployment", "registry-watcher"), ("Service", "registry-watcher"),
                         ("PodDisruptionBudget", "registry-watcher"), ("ServiceMonitor", "registry-watcher")}
    assert {k: _validate(d) for k, d in docs.items()}[("ServiceMonitor", "registry-watcher")] == "crd"
    broken = yaml.safe_load(yaml.safe_dump(docs[("Deployment", "registry-watcher")]))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):  # the validation is strict: a typo fails
        _validate(broken)


def test_the_deployment_is_what_an_sre_expects(docs):
    dep = docs[("Deployment", "registry-watcher")]
    pod = dep["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    assert dep["spec"]["replicas"] == 2 and dep["metadata"]["namespace"] == "registry-watcher"
    assert box["livenessProbe"]["httpGet"]["path"] == "/healthz" and box["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True and box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"/tmp", "/config"} <= {m["mountPath"] for m in box["volumeMounts"]}
    assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"] is not None
    assert set(box["resources"]) == {"requests", "limits"}
    assert pod["terminationGracePeriodSeconds"] >= 120  # a scoring in hand finishes
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in box["env"] if "valueFrom" in e}
    assert env == {"WATCHER_HTTP__WEBHOOK_SECRET": {"name": "registry-watcher", "key": "webhook-secret"},
                   "WATCHER_HA__LOCK_URL": {"name": "registry-watcher", "key": "lock-url"}}
    config_map = {v["name"]: v for v in pod["volumes"]}["config"]["configMap"]["name"]
    assert ("ConfigMap", config_map) in docs
    service = docs[("Service", "registry-watcher")]
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    pdb = docs[("PodDisruptionBudget", "registry-watcher")]
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["selector"] == dep["spec"]["selector"]
    monitor = docs[("ServiceMonitor", "registry-watcher")]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_the_config_map_loads_with_the_secret_from_the_environment(docs, tmp_path, monkeypatch):
    path = tmp_path / "watcher.yaml"
    path.write_text(docs[("ConfigMap", "registry-watcher-config")]["data"]["watcher.yaml"])
    monkeypatch.setenv("WATCHER_HA__LOCK_URL", "postgresql://watcher:pw@db:5432/watcher")
    monkeypatch.setenv("WATCHER_HTTP__WEBHOOK_SECRET", "s3cret")
    config = load_config(path)
    assert config.ha is not None and config.ha.lock_url == "postgresql://watcher:pw@db:5432/watcher"
    assert config.http is not None and config.http.webhook_secret.get_secret_value() == "s3cret"
    assert config.http.port == 8080


def test_docs_apply_the_base_and_give_docker_a_stop_timeout():
    assert "kubectl apply -k deploy/kubernetes" in (ROOT / "docs" / "deployment" / "kubernetes.md").read_text()
    readme = (ROOT / "docs" / "deployment" / "container.md").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"docker run (?:.*\\\n)*.*", readme) + re.findall(r"docker run .*", dockerfile)
    assert len(runs) >= 2 and all("--stop-timeout" in run for run in runs), runs


def _exported() -> set[str]:
    """Every series name the daemon can export (counters as ``<name>_total``), with ``ha``."""
    metrics.init_polls()
    metrics.init_model("m")
    metrics.set_lock_db_up(True)  # created on first use: the daemon exports it with the ha block
    names = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(family.name)
    return names


def _metric_names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node):  # noqa: ANN001, ANN202
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
            else:
                found.update(m.value for m in node.matchers.matchers if m.name == "__name__")

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found


def test_alert_rules_parse_and_name_only_exported_metrics():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    (group,) = rules["groups"]
    exported = _exported()
    named: set[str] = set()
    for rule in group["rules"]:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        used = _metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
        named |= used
    alerts = {r["alert"] for r in group["rules"]}
    assert {"RegistryWatcherNoLeader", "RegistryWatcherPollsFailing", "RegistryWatcherLockDatabaseDown",
            "RegistryWatcherScoringFailed", "RegistryWatcherProtectedAliasChanged",
            "RegistryWatcherNoSuccessfulPoll"} <= alerts
    assert {"registry_watcher_leader", "registry_watcher_lock_db_up", "registry_watcher_polls_total",
            "registry_watcher_scorings_total", "registry_watcher_protected_alias_changes_total",
            "registry_watcher_last_successful_poll_timestamp_seconds"} <= named
    assert _metric_names('sum(rate(nope_total[5m]))') == {"nope_total"}  # the walk does find names
