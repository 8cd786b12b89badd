"""``check-config``: is the file right, and what would the watcher do with it?

Three layers, each printed as it is checked; any error makes the exit code 1:

* the schema (``load_config``: every field, ``discover``, ``profiles`` and their ``extends``);
* what the schema cannot see but a local look can (:func:`static_findings`): a scoring ``input``
  that does not exist (a watch's or a profile's), a profile whose scoring experiment is a watched
  experiment (every watch of it would be refused), ``discover`` without a ``default`` profile
  (a warning: untagged experiments are refused), ``profiles`` that nothing uses (a warning);
* with the server (not with ``--offline``): the tracking server and the ``ha`` lock database answer,
  and the watches the watcher would make and refuse (``watcher.cli.plan``), each with its reason.

``--offline`` stops after the second layer and imports no MLflow (unless a ``run_filter`` or a custom
gate's module needs it to be validated).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watcher.cli.output import say, say_error, say_errors
from watcher.config import DEFAULT_PROFILE, ConfigError, WatcherConfig, WatchProfile, is_uri, load_config
from watcher.config import scoring_inputs as inputs_of

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Finding:
    """One thing ``check-config`` found: where (a config location or a component), what, and
    whether it is an error (exit 1) or a warning."""

    where: str
    message: str
    error: bool = True
    event: str = ""
    """The log event ``check-config`` emits for it (online), if any; its fields are ``fields``."""
    fields: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        return f"{self.where}: {self.message}"


def config_error_lines(exc: ConfigError) -> list[str]:
    """A :class:`ConfigError` as one line per bad field, each naming the file."""
    head, _, rest = str(exc).partition("\n")
    if not rest:
        return [head]
    file = head.removesuffix(": invalid config")
    return [f"{file}: invalid config: {line}" for line in rest.splitlines() if line.strip()]


def _scoring_input(where: str, name: str, block: WatchProfile) -> list[Finding]:
    if block.scoring is None or is_uri(block.scoring.input):
        return []
    if any(os.path.isfile(p) for p in inputs_of(block.scoring.input)):
        return []
    return [Finding(f"{where}.scoring.input", f"scoring input of {name} does not exist: {block.scoring.input}",
                    event="scoring_input_missing", fields=(("model_name", name), ("input", block.scoring.input)))]


def _profile_findings(config: WatcherConfig, name: str, profile: WatchProfile) -> list[Finding]:
    """A profile's local scoring input (said once, at the base that sets it) and scoring experiment."""
    found: list[Finding] = []
    base = config.profiles.get(profile.extends or "")
    inherited = base is not None and base.scoring is not None and profile.scoring is not None \
        and base.scoring.input == profile.scoring.input
    if not inherited:
        found += _scoring_input(f"profiles.{name}", f"profile {name}", profile)
    scoring = profile.scoring.experiment if profile.scoring is not None else None
    if scoring is not None and (scoring == config.audit_experiment or scoring in {w.experiment for w in config.watches}):
        found.append(Finding(f"profiles.{name}.scoring.experiment", f"'{scoring}' is a watched or the audit "
                             "experiment: every watch of this profile would be refused"))
    return found


def _usage_findings(config: WatcherConfig) -> list[Finding]:
    """Warnings: discovery without a ``default`` profile, profiles nothing can use, no tracking URI."""
    found: list[Finding] = []
    if config.discover is not None and DEFAULT_PROFILE not in config.profiles:
        found.append(Finding(f"profiles.{DEFAULT_PROFILE}",
                             f"missing: an experiment tagged without '{config.discover.profile_tag}' is refused "
                             f"(known: {', '.join(sorted(config.profiles)) or 'none'})", error=False))
    extended = {w.extends for w in config.watches} | {p.extends for p in config.profiles.values()}
    if config.discover is None and config.profiles and not set(config.profiles) & extended:
        found.append(Finding("profiles", "unused: no discover block and no watch extends a profile", error=False))
    if not config.tracking_uri:
        found.append(Finding("tracking_uri", "not set in the file or the environment: every other command "
                             "refuses to start without it", error=False))
    return found


def static_findings(config: WatcherConfig) -> list[Finding]:
    """What a local look finds beyond the schema (no server)."""
    found: list[Finding] = []
    for i, watch in enumerate(config.watches):
        found += _scoring_input(f"watches.{i}", watch.model_name, watch)
    for name, profile in config.profiles.items():
        found += _profile_findings(config, name, profile)
    return found + _usage_findings(config)


def _say_findings(findings: list[Finding]) -> None:
    for finding in findings:
        if finding.error:
            say_error(finding.text())
        else:
            say(f"warning: {finding.text()}")


def describe(config: WatcherConfig) -> list[str]:
    """The file in a few lines: the configured watches, the profiles and what they extend, discovery."""
    lines = [f"watch (config): experiment '{w.experiment}' -> model '{w.model_name}'"
             + (f" (extends {w.extends})" if w.extends else "") for w in config.watches]
    for name, profile in sorted(config.profiles.items()):
        lines.append(f"profile {name}" + (f" (extends {profile.extends})" if profile.extends else "")
                     + f": {len(profile.gates)} gate(s), staging alias '{profile.staging_alias}'")
    if config.discover is not None:
        lines.append(f"discover: experiments tagged '{config.discover.tag}' (profile tag "
                     f"'{config.discover.profile_tag}'), searched every {config.discover.interval_seconds:g} s")
    return lines


def check_offline(path: str) -> int:
    """``check-config --offline``: the schema and a local look; 0 valid, 1 not."""
    try:
        config = load_config(path, need_tracking_uri=False)
    except ConfigError as exc:
        say_errors(config_error_lines(exc))
        return 1
    for line in describe(config):
        say(line)
    findings = static_findings(config)
    _say_findings(findings)
    errors = sum(f.error for f in findings)
    say(f"{path}: {'invalid' if errors else 'valid'} (offline: the server was not asked)")
    return 1 if errors else 0


def check_online(client: MlflowClient, config: WatcherConfig, failed: list[str]) -> int:
    """The rest of ``check-config`` after the server and lock checks (``failed`` names those that
    failed): the local look and, when the server answered, the watches it would make and refuse.
    Its report is its log (``config_ok``, ``config_refused``, ...); each error is also an ``error:`` line."""
    from watcher.obs.logs import get_logger

    log = get_logger("watcher.cli")
    findings = static_findings(config)
    for finding in findings:
        if finding.event == "scoring_input_missing":
            log.error("scoring_input_missing", **dict(finding.fields))
        elif finding.error:
            log.error("config_problem", location=finding.where, error=finding.message)
        else:
            log.warning("config_warning", location=finding.where, warning=finding.message)
        if finding.error:
            say_error(finding.text())
    refused = 0
    if "tracking_server" not in failed:
        from watcher.cli.plan import plan

        planned = plan(client, config)
        for row in planned.watched:
            log.info("config_ok", experiment=row.experiment, model_name=row.model, experiment_id=row.experiment_id,
                     experiment_exists=row.experiment_id is not None, gates=len(row.watch.gates),
                     scoring=row.watch.scoring is not None, source=row.source)
        for gone in planned.refused:
            log.error("config_refused", experiment=gone.experiment, experiment_id=gone.experiment_id,
                      model_name=gone.model_name or None, reason=gone.reason)
            say_error(f"would refuse experiment '{gone.experiment}' ({gone.experiment_id}) -> model "
                      f"'{gone.model_name}': {gone.reason}")
        refused = len(planned.refused)
    return 1 if failed or refused or any(f.error for f in findings) else 0
