"""The documentation site (issue 25, item 9): it builds with ``mkdocs build --strict``, its
configuration reference carries every key of the pydantic schema (generated, never written by
hand), its event reference every event of the catalogue, and the README stays a short front door
whose links all land on pages of the site. One build per test session."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config import WatcherConfig

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _page(site: Path, doc: str) -> str:
    """The built HTML of ``docs/<doc>`` (``reference/configuration.md``), entities decoded."""
    name = doc.removesuffix(".md")
    path = site / "index.html" if name == "index" else site / name / "index.html"
    return html.unescape(path.read_text())


def test_every_key_of_the_schema_is_in_the_configuration_reference(site):
    schema = WatcherConfig.model_json_schema()
    page = _page(site, "reference/configuration.md")
    codes = set(re.findall(r"<code>([^<]+)</code>", page))
    keys = set(schema["properties"])
    for name, model in schema["$defs"].items():
        assert f'id="{name.lower()}"' in page, f"no section for ${name}"
        keys |= set(model.get("properties", {}))
    missing = sorted(k for k in keys if k not in codes)
    assert not missing, f"keys missing from the built configuration reference: {missing}"
    assert set(schema["$defs"]) <= codes


def test_each_key_shows_its_docstring_and_default(site):
    page = _page(site, "reference/configuration.md")
    field = WatcherConfig.model_fields["poll_interval_seconds"]
    assert field.description and " ".join(field.description.split()) in page
    row = re.search(r"<tr>\s*<td><code>poll_interval_seconds</code></td>(.*?)</tr>", page, re.S)
    assert row and "<code>10.0</code>" in row.group(1) and "seconds" in row.group(1)


def test_the_configuration_reference_is_not_written_by_hand():
    source = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    assert "<!-- config-reference -->" in source
    assert not re.search(r"^\|\s*`", source, re.M), "a hand-written key table in the configuration page"


def test_every_catalogued_event_is_in_the_event_reference(site):
    from watcher.obs.events import CATALOGUE

    source = (ROOT / "docs" / "operations" / "events.md").read_text()
    assert "<!-- event-catalogue -->" in source and not re.search(r"^\|\s*`", source, re.M), "a hand-written event table"
    page = _page(site, "operations/events.md")
    codes = set(re.findall(r"<code>([^<]+)</code>", page))
    missing = sorted(name for name in CATALOGUE if name not in codes)
    assert not missing, f"events missing from the built event reference: {missing}"


def test_the_readme_is_short_and_its_links_land_on_built_pages(site):
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 10, links
    for link in links:
        assert (ROOT / link).is_file(), f"README links to a missing file: {link}"
        assert _page(site, link.removeprefix("docs/")), link


def test_every_repository_path_the_docs_name_exists():
    pattern = re.compile(r"`((?:watcher|handlers|tests|bench|deploy|demo|plugins|docs)/[\w./-]*)`")
    named = {m for path in [README, *(ROOT / "docs").rglob("*.md")] for m in pattern.findall(path.read_text())}
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"the docs name paths that do not exist: {missing}"


def test_the_module_map_lists_every_module(site):
    page = _page(site, "architecture.md")
    for package in ("watcher/engine", "watcher/store", "watcher/service", "handlers"):
        for path in (ROOT / package).glob("*.py"):
            if path.name != "__init__.py":
                assert f"<code>{path.stem}</code>" in page, path


def test_the_mlflow_environment_of_the_process_is_documented_from_the_code(site):
    from watcher.obs.environment import MLFLOW_ENVIRONMENT

    page = _page(site, "reference/configuration.md")
    for name, value in MLFLOW_ENVIRONMENT.items():
        row = re.search(rf"<tr>\s*<td><code>{name}</code></td>\s*<td><code>([^<]+)</code></td>\s*<td>([^<]+)", page)
        assert row and row.group(1) == value and row.group(2).strip(), f"{name} is not documented with its reason"
