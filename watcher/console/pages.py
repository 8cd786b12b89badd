"""The console's HTML: Jinja2 templates (``watcher/console/templates``) with autoescape on.

Everything a run or a person wrote (names, reasons, tags) goes through Jinja's escaping; no
template marks a value safe. The fleet page and its refresh fragments are rendered once per
:class:`~watcher.console.view.FleetView` version and kept, so a page view of ``/`` costs a
dictionary lookup after the first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from watcher.console.detail import ModelDetail
from watcher.console.links import UiLinks
from watcher.console.view import FleetView, ModelRow

PACKAGE = __name__.rpartition(".")[0]
"""This package (its templates and static files are package data)."""
STATIC = "/console/static"
FLEET_JSON = "/console/fleet.json"
MODEL_JSON = "/console/model.json"
MODEL_SECTIONS = {"model-aliases": "_aliases.html", "model-charts": "_charts.html", "model-runs": "_runs.html",
                  "model-moves": "_moves.html", "model-scoring": "_scoring.html"}


def model_href(name: str) -> str:
    """The console's page of a model (its name URL-encoded, ``/`` included)."""
    return "/models/" + quote(name, safe="")


def run_href(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def show(value: Any) -> str:
    """A gate's value or threshold as text (numbers to 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader(PACKAGE, "templates"),
                      autoescape=select_autoescape(["html"], default=True), trim_blocks=False, auto_reload=False)
    env.globals.update(model_href=model_href, run_href=run_href, show=show, static=STATIC)
    return env


ENV = _environment()


def _digest(sections: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sections, sort_keys=True).encode()).hexdigest()[:16]


class Pages:
    """Renders the pages; keeps the fleet page of the current view version (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fleet: tuple[int, str, dict[str, str]] | None = None

    def _fleet_rendered(self, view: FleetView) -> tuple[str, dict[str, str]]:
        with self._lock:
            kept = self._fleet
        if kept is not None and kept[0] == view.version:
            return kept[1], kept[2]
        context = {"view": view, "refresh": FLEET_JSON, "version": view.version, "updated_at": view.updated_at}
        sections = {"fleet-rows": ENV.get_template("_rows.html").render(context),
                    "fleet-summary": ENV.get_template("_summary.html").render(context)}
        # the rows are rendered once, by an autoescaping template, and placed in the page as they are
        page = ENV.get_template("fleet.html").render(context, rows=Markup(sections["fleet-rows"]),  # noqa: S704
                                                     summary=Markup(sections["fleet-summary"]))  # noqa: S704
        with self._lock:
            self._fleet = (view.version, page, sections)
        return page, sections

    def fleet_page(self, view: FleetView) -> str:
        """``/``."""
        return self._fleet_rendered(view)[0]

    def fleet_payload(self, view: FleetView, since: str | None) -> dict[str, Any]:
        """The refresh of ``/``: its rows and summary, or ``unchanged`` when ``since`` is current."""
        if since == str(view.version):
            return {"version": str(view.version), "unchanged": True}
        return {"version": str(view.version), "updated_at": view.updated_at,
                "sections": self._fleet_rendered(view)[1]}

    @staticmethod
    def _model_context(row: ModelRow, detail: ModelDetail | None, links: UiLinks, problem: str,
                       approvers: dict[str, list[str]] | None) -> dict[str, Any]:
        return {"row": row, "detail": detail, "links": links, "problem": problem, "approvers": approvers}

    def model_sections(self, row: ModelRow, detail: ModelDetail | None, links: UiLinks, problem: str = "",
                       approvers: dict[str, list[str]] | None = None) -> dict[str, str]:
        context = self._model_context(row, detail, links, problem, approvers)
        return {section: ENV.get_template(name).render(context) for section, name in MODEL_SECTIONS.items()}

    def model_page(self, row: ModelRow, detail: ModelDetail | None, links: UiLinks, *, updated_at: str | None,
              problem: str = "", approvers: dict[str, list[str]] | None = None) -> str:
        """``/models/<name>``."""
        context = self._model_context(row, detail, links, problem, approvers)
        version = _digest(self.model_sections(row, detail, links, problem, approvers))
        return ENV.get_template("model.html").render(
            context, refresh=f"{MODEL_JSON}?name={quote(row.name, safe='')}", version=version, updated_at=updated_at)

    def model_payload(self, row: ModelRow, detail: ModelDetail | None, links: UiLinks, since: str | None,
                   problem: str = "", approvers: dict[str, list[str]] | None = None) -> dict[str, Any]:
        sections = self.model_sections(row, detail, links, problem, approvers)
        version = _digest(sections)
        if since == version:
            return {"version": version, "unchanged": True}
        return {"version": version, "sections": sections}

    @staticmethod
    def run_page(found: dict[str, Any], links: UiLinks, experiment_id: str | None, updated_at: str | None) -> str:
        """``/runs/<id>``: what ``explain --run`` says."""
        version = found.get("version") or {}
        return ENV.get_template("run.html").render(
            run=found, run_link=links.run_link(experiment_id, found["run_id"]), updated_at=updated_at,
            version_link=links.version_link(version.get("model_name", ""), version.get("version")) if version else None)

    @staticmethod
    def missing(what: str) -> str:
        return ENV.get_template("missing.html").render(what=what)
