"""A renderer for the subset of kustomize that ``deploy/kubernetes`` uses, so the suite needs no binary:
``resources`` (files and folders), ``namespace``, ``labels`` (pairs, includeSelectors), ``commonLabels``
and ``configMapGenerator`` (files, literals) with ``generatorOptions.disableNameSuffixHash``. The
test cross-checks it against ``kubectl kustomize`` when kubectl is on PATH."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
                  "StorageClass", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def render(path: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize path`` prints, as dicts (order not significant)."""
    k = yaml.safe_load((path / "kustomization.yaml").read_text())
    unsupported = set(k) - {"apiVersion", "kind", "namespace", "labels", "commonLabels", "resources",
                            "configMapGenerator", "generatorOptions"}
    assert not unsupported, f"kustomize_lite does not implement {unsupported}"
    assert (k.get("generatorOptions") or {}).get("disableNameSuffixHash"), "name hashes are not implemented"
    docs: list[dict[str, Any]] = []
    for resource in k.get("resources", []):
        target = path / resource
        if target.is_dir():
            docs += render(target)
        else:
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
    for gen in k.get("configMapGenerator", []):
        data = {Path(f).name: (path / f).read_text() for f in gen.get("files", [])}
        data.update(dict(item.split("=", 1) for item in gen.get("literals", [])))
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    for doc in docs:
        if k.get("commonLabels"):
            _label(doc, k["commonLabels"], selectors=True, templates=True)
        for group in k.get("labels", []):
            selectors = group.get("includeSelectors", False)
            _label(doc, group["pairs"], selectors, templates=selectors or group.get("includeTemplates", False))
        if k.get("namespace") and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = k["namespace"]
    return docs


def _label(doc: dict[str, Any], pairs: dict[str, str], selectors: bool, templates: bool) -> None:
    doc["metadata"].setdefault("labels", {}).update(pairs)
    spec = doc.get("spec") or {}
    if doc["kind"] in WORKLOADS:
        if templates:
            spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors:
            spec["selector"].setdefault("matchLabels", {}).update(pairs)
    elif selectors and doc["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    elif selectors and doc["kind"] == "PodDisruptionBudget":
        spec["selector"].setdefault("matchLabels", {}).update(pairs)


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def normalized(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {key(d): copy.deepcopy(d) for d in docs}
