"""`rnnkit train` takes every default from TrainConfig (STYLE rule 12): nothing is spelled twice."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import click  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from rnnkit.runtime.contract import CELLS, TASKS  # noqa: E402
from rnnkit.runtime.errors import ConfigError  # noqa: E402
from rnnkit.runtime.tokenizers import SEGMENTERS  # noqa: E402
from rnnkit.train import cli as cli_module  # noqa: E402
from rnnkit.train.cli import train  # noqa: E402
from rnnkit.train.config import AMP_MODES, LEVELS, TrainConfig  # noqa: E402

# Fields deliberately left off the CLI; a new field must get an option or a line here.
NOT_ON_CLI = {
    "warmup": "a schedule detail; the 2% default suits every builtin run",
    "valid_sample": "what the checkpoint keeps for export's int8 checks, not a training choice",
}
# Fields whose option is a `--no-*` flag: the flag off gives the field's (truthy) default.
INVERTED = {"normalize": "no_normalize", "hmm": "no_hmm"}
# Options that steer the run rather than configure it.
CLI_ONLY = {"resume", "quiet"}
# What TrainConfig.__post_init__ accepts for each Choice option.
ACCEPTED = {"task": TASKS, "cell": CELLS, "level": LEVELS, "tokenizer": SEGMENTERS, "amp": AMP_MODES}


def field_defaults() -> dict[str, Any]:
    """Every TrainConfig field and its default (MISSING for the required ones)."""
    return {f.name: f.default for f in fields(TrainConfig)}


def mismatches(defaults: dict[str, Any], params: list[click.Parameter]) -> list[str]:
    """Every way the options in ``params`` disagree with the field ``defaults``."""
    options = {p.name: p for p in params}
    ctx = click.Context(click.Command("train", params=params))  # get_default: the value click would pass
    problems = [f"{name}: in NOT_ON_CLI but not a TrainConfig field" for name in NOT_ON_CLI if name not in defaults]
    for name, default in defaults.items():
        if name in NOT_ON_CLI:
            if name in options:
                problems.append(f"{name}: in NOT_ON_CLI yet has an option")
            continue
        option = options.get(INVERTED.get(name, name))
        if option is None:
            problems.append(f"{name}: no option; add one or list it in NOT_ON_CLI")
        elif default is MISSING:
            if not option.required:
                problems.append(f"{name}: the field has no default, so the option must be required")
        elif option.required:
            problems.append(f"{name}: the field has a default ({default!r}) but the option is required")
        elif name in INVERTED:
            if not (option.is_flag and option.get_default(ctx) is False and default):
                problems.append(f"{name}: --{option.name.replace('_', '-')} must be an off-by-default flag "
                                f"undoing a truthy field default, got field default {default!r}")
        elif getattr(option, "is_flag", False) and not option.secondary_opts and default is not False:
            # (an on/off pair such as --keep-whitespace/--drop-whitespace may default to None: "decide")
            problems.append(f"{name}: a flag can only turn the field on, so its default must be False, "
                            f"got {default!r}")
        elif (value := option.get_default(ctx)) != default or type(value) is not type(default):
            problems.append(f"{name}: option default {value!r} != field default {default!r}")
        if option is not None and (name in ACCEPTED or isinstance(option.type, click.Choice)):
            choices = tuple(getattr(option.type, "choices", ()))
            if choices != tuple(ACCEPTED.get(name, ())):
                problems.append(f"{name}: option choices {choices} != accepted {tuple(ACCEPTED.get(name, ()))}")
    expected = (set(defaults) - set(INVERTED)) | set(INVERTED.values()) | CLI_ONLY
    problems += [f"{name}: option maps to no TrainConfig field" for name in sorted(set(options) - expected)]
    return problems


def test_every_field_has_an_option_with_its_default_or_is_listed():
    assert mismatches(field_defaults(), train.params) == []


@pytest.mark.parametrize("field,values", ACCEPTED.items())
def test_the_accepted_choices_are_what_trainconfig_accepts(field, values):
    base = {"task": "lm", "data": "d.txt", "out": "o"}
    for value in values:
        TrainConfig(**{**base, field: value})
    others = {v for vs in ACCEPTED.values() for v in vs} - set(values) | {"bogus", values[0].upper()}
    for value in others:
        with pytest.raises(ConfigError):
            TrainConfig(**{**base, field: value})


def without(params: list[click.Parameter], name: str) -> list[click.Parameter]:
    return [p for p in params if p.name != name]


@pytest.mark.parametrize("defaults,params,reported", [
    ({**field_defaults(), "epochs": 11}, train.params, "epochs: option default None != field default 11"),
    ({**field_defaults(), "lr": 1e-3}, train.params, "lr: option default"),
    ({**field_defaults(), "embed": 64.0}, train.params, "embed: option default"),
    ({**field_defaults(), "new_knob": 1}, train.params, "new_knob: no option"),
    ({**field_defaults(), "task": "lm"}, train.params, "task: the field has a default"),
    ({**field_defaults(), "max_steps": MISSING}, train.params, "max_steps: the field has no default"),
    ({**field_defaults(), "hmm": False}, train.params, "hmm: --no-hmm must be"),
    ({**field_defaults(), "normalize": None}, train.params, "normalize: --no-normalize must be"),
    ({**field_defaults(), "tie_weights": True}, train.params, "tie_weights: a flag can only turn"),
    ({k: v for k, v in field_defaults().items() if k != "warmup"}, train.params, "warmup: in NOT_ON_CLI but"),
    (field_defaults(), without(train.params, "seed"), "seed: no option"),
    (field_defaults(), [*train.params, click.Option(["--warmup"], default=0.02)], "warmup: in NOT_ON_CLI yet"),
    (field_defaults(), [*train.params, click.Option(["--verbose"], is_flag=True)], "verbose: option maps to no"),
    (field_defaults(), [*without(train.params, "cell"), click.Option(["--cell"], type=click.Choice(["gru"]),
                                                                     default="gru")], "cell: option choices"),
])
def test_the_comparison_reports_a_drift(defaults, params, reported):
    problems = mismatches(defaults, params)
    assert len(problems) == 1 and problems[0].startswith(reported), problems


@pytest.mark.parametrize("extra,changed", [
    ([], {}),
    (["--no-normalize", "--no-hmm", "--lowercase", "--skip-bad", "--whole-file"],
     {"normalize": None, "hmm": False, "lowercase": True, "skip_bad": True, "whole_file": True}),
])
def test_the_command_builds_the_same_config_as_the_dataclass(monkeypatch, tmp_path, extra, changed):
    seen: list[TrainConfig] = []

    class Stop(Exception):
        pass

    def capture(config: TrainConfig, **_: Any) -> None:
        seen.append(config)
        raise Stop

    monkeypatch.setattr(cli_module, "run_training", capture)
    out = str(tmp_path / "run")
    result = CliRunner().invoke(train, ["--task", "lm", "--data", "d.txt", "--out", out, "--quiet", *extra])
    assert isinstance(result.exception, Stop), result.output
    assert seen == [TrainConfig(task="lm", data="d.txt", out=out, **changed)]
