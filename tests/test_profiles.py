"""Issue 26, item 5: profiles that share a base (``extends``), and ``check-config`` on profiles.

Pure config logic (no server): the merge (mappings merge at every depth, lists are replaced, the
child wins, a chain of bases), ``extends`` on a ``watches`` entry, errors located at the ``extends``
key (an unknown base, a cycle, a name that is not a string), and ``check-config --offline`` exiting 1
on a broken profile, naming the field, with no MLflow imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from watcher.cli import main
from watcher.config import ConfigError, WatchConfig, load_config
from watcher.config.profiles import ProfileError, merge, resolve_extends

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
tracking_uri: http://127.0.0.1:5000
discover: {}
profiles:
  default:
    gates: [{metric: recall, min: 0.2}, {metric: precision, min: 0.1}]
    tags: {team: platform, tier: "2"}
    scoring: {input: in.csv, output_dir: out, chunk_rows: 500}
  strict:
    extends: default
    gates: [{metric: recall, min: 0.6}]
    tags: {tier: "1"}
    scoring: {chunk_rows: 50}
  stricter:
    extends: strict
    staging_alias: candidate
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return str(path)


def test_merge_mappings_deep_lists_replaced_child_wins():
    base = {"a": 1, "tags": {"x": "1", "y": "2"}, "scoring": {"retry": {"initial_seconds": 1, "max_seconds": 9}},
            "gates": [{"metric": "recall", "min": 0.2}, {"metric": "precision", "min": 0.1}]}
    child = {"tags": {"y": "3"}, "scoring": {"retry": {"max_seconds": 5}}, "gates": [{"metric": "f1", "min": 0.5}]}
    merged = merge(base, child)
    assert merged == {"a": 1, "tags": {"x": "1", "y": "3"}, "scoring": {"retry": {"initial_seconds": 1, "max_seconds": 5}},
                      "gates": [{"metric": "f1", "min": 0.5}]}
    merged["tags"]["x"] = "changed"
    assert base["tags"]["x"] == "1"  # the result shares nothing with its inputs


def test_a_profile_takes_its_bases_keys_under_its_own(tmp_path):
    (tmp_path / "in.csv").write_text("a\n1\n")
    config = load_config(_write(tmp_path, BASE))
    default, strict, stricter = (config.profiles[n] for n in ("default", "strict", "stricter"))
    assert [g.min for g in strict.gates] == [0.6]  # a list is replaced whole
    assert strict.tags == {"team": "platform", "tier": "1"}  # a mapping merges, the child wins
    assert strict.scoring is not None and strict.scoring.chunk_rows == 50
    assert strict.scoring.input == str(tmp_path.resolve() / "in.csv")  # the base's scoring, paths resolved
    assert strict.scoring.output_dir == str(tmp_path.resolve() / "out")  # not the default's "predictions"
    assert (stricter.staging_alias, stricter.tags, [g.min for g in stricter.gates]) == ("candidate", strict.tags, [0.6])
    assert stricter.extends == "strict" and default.extends is None and default.staging_alias == "staging"
    watch = WatchConfig.from_profile(stricter, "exp", "model")  # what discovery makes of a tagged experiment
    assert (watch.staging_alias, watch.tags["tier"], watch.experiment) == ("candidate", "1", "exp")


def test_a_watch_may_extend_a_profile(tmp_path):
    text = BASE + "watches:\n  - {experiment: e, model_name: m, extends: strict, tags: {owner: ann}}\n"
    watch = load_config(_write(tmp_path, text)).watches[0]
    assert watch.tags == {"team": "platform", "tier": "1", "owner": "ann"}
    assert [g.min for g in watch.gates] == [0.6] and watch.extends == "strict"


def test_resolving_twice_changes_nothing():
    raw = {"profiles": {"a": {"tags": {"x": "1"}}, "b": {"extends": "a", "tags": {"y": "2"}}}}
    once = resolve_extends(raw)
    assert once["profiles"]["b"] == {"extends": "a", "tags": {"x": "1", "y": "2"}}
    assert resolve_extends(once) == once
    assert raw["profiles"]["b"] == {"extends": "a", "tags": {"y": "2"}}  # the input is left as it was


@pytest.mark.parametrize(("profiles", "message"), [
    ({"team_b": {"extends": "x"}, "default": {}}, "profiles.team_b.extends: unknown profile 'x' (known: default, team_b)"),
    ({"a": {"extends": "b"}, "b": {"extends": "a"}}, "profiles.b.extends: a cycle of extends: a -> b -> a"),
    ({"a": {"extends": "a"}}, "profiles.a.extends: a cycle of extends: a -> a"),
    ({"a": {"extends": ["b"]}, "b": {}}, "profiles.a.extends: must be the name of a profile"),
])
def test_unknown_bases_and_cycles_are_located_errors(profiles, message):
    with pytest.raises(ProfileError) as caught:
        resolve_extends({"profiles": profiles})
    assert str(caught.value) == message


def test_a_watch_extending_an_unknown_profile_is_located(tmp_path):
    text = "tracking_uri: http://h\nwatches:\n  - {experiment: e, model_name: m}\n  - {experiment: f, model_name: n, extends: nope}\n"
    with pytest.raises(ConfigError, match=r"watches\.1\.extends: unknown profile 'nope' \(known: none\)"):
        load_config(_write(tmp_path, text))


def test_a_broken_profile_fails_check_config_with_the_field_located(tmp_path, capsys):
    """Acceptance 4: a broken profile makes check-config exit 1, naming the field (a base that does
    not exist; a bad value inherited into a child; a profile's scoring input that does not exist)."""
    (tmp_path / "in.csv").write_text("a\n1\n")
    cases = {
        BASE.replace("extends: strict", "extends: strcit"): "profiles.stricter.extends: unknown profile 'strcit'",
        BASE.replace("min: 0.6", "min: high"): "profiles.strict.gates.0.metric.min: Input should be a valid number",
        BASE.replace("staging_alias: candidate", "staging_alias: candidate\n    colour: red"):
            "profiles.stricter.colour: Extra inputs are not permitted",
    }
    for text, located in cases.items():
        for verb in (["check-config", "--offline"], ["check-config"]):
            assert main([*verb, "--config", _write(tmp_path, text)]) == 1, (verb, located)
            err = capsys.readouterr().err
            assert f"error: {tmp_path / 'watcher.yaml'}: invalid config: {located}" in err, err
    (tmp_path / "in.csv").unlink()
    assert main(["check-config", "--offline", "--config", _write(tmp_path, BASE)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: profiles.default.scoring.input: scoring input of profile default does not exist: "
                   f"{tmp_path.resolve() / 'in.csv'}"]  # said once, at the base, not again for each child


def test_check_config_offline_describes_and_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WATCHER_TRACKING_URI", raising=False)
    (tmp_path / "in.csv").write_text("a\n1\n")
    text = BASE.replace("tracking_uri: http://127.0.0.1:5000\n", "").replace("  default:", "  base:") \
        .replace("extends: default", "extends: base")
    assert main(["check-config", "--offline", "--config", _write(tmp_path, text)]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "profile strict (extends base): 1 gate(s)" in out
    assert "warning: profiles.default: missing: an experiment tagged without 'registry-watcher.profile' is refused" in out
    assert "warning: tracking_uri: not set" in out and "valid (offline" in out
    assert main(["check-config", "--config", _write(tmp_path, text)]) == 1  # online, no URI: an error
    assert "tracking_uri: not set" in capsys.readouterr().err


def _modules_after(argv: list[str], cwd: Path) -> str:
    code = ("import sys\nfrom watcher.cli import main\ntry:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    code = e.code\nprint('EXIT', code, 'mlflow' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=120)
    return done.stderr.strip().splitlines()[-1]


def test_help_and_offline_check_import_no_mlflow(tmp_path):
    (tmp_path / "in.csv").write_text("a\n1\n")
    path = _write(tmp_path, BASE)
    assert _modules_after(["--help"], tmp_path) == "EXIT 0 False"
    assert _modules_after(["check-config", "--help"], tmp_path) == "EXIT 0 False"
    assert _modules_after(["check-config", "--offline", "--config", path], tmp_path) == "EXIT 0 False"
    broken = _write(tmp_path, BASE.replace("extends: strict", "extends: nope"))
    assert _modules_after(["check-config", "--offline", "--config", broken], tmp_path) == "EXIT 1 False"
