"""Options work in the order people type them: no command has an optional positional after another positional (then
argparse takes options between them as the end of the first and refuses the rest: `token create --db lb.db alice`
ended in "unrecognized arguments: alice")."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, name: str = "bench") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_no_command_has_an_optional_positional_after_another_positional() -> None:
    offenders = []
    for name, parser in _parsers(build_parser()):
        positionals = [
            a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
        ]
        for before, after in itertools.pairwise(positionals):
            if after.nargs in ("?", "*"):
                offenders.append(f"{name}: {after.dest!r} (nargs={after.nargs}) after {before.dest!r}")
    assert offenders == []


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "create", "--db", "{db}", "alice"],
        ["token", "create", "alice", "--db", "{db}"],
        ["token", "--db", "{db}", "create", "alice"],
    ],
)
def test_token_create_takes_the_db_before_or_after_the_name(tmp_path: Path, argv: list[str]) -> None:
    db = str(tmp_path / "lb.db")
    assert main(["leaderboard", *(a.replace("{db}", db) for a in argv)]) == 0
    assert main(["leaderboard", "token", "list", "--db", db]) == 0
    assert main(["leaderboard", "token", "--db", db, "revoke", "alice"]) == 0


def test_token_create_without_a_name_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "token", "create", "--db", "x.db"])
    assert exit_.value.code == 2 and "required: name" in capsys.readouterr().err


def test_the_share_of_other_processes_can_be_accepted_from_the_command_line() -> None:
    from bench.cli import _with_measurement
    from bench.config import load_profile
    from bench.errors import ConfigError

    profile = _with_measurement(load_profile("cpu"), max_other_cpu_share=0.5)
    assert profile.measurement.max_other_cpu_share == 0.5
    assert _with_measurement(profile, max_other_cpu_share=None) is profile
    with pytest.raises(ConfigError, match=r"--max-other-cpu-share 1\.5: .*from 0 to 1"):
        _with_measurement(profile, max_other_cpu_share=1.5)


def test_grid_intensity_price_and_currency_from_the_command_line() -> None:
    from bench.cli import _with_measurement
    from bench.config import load_profile
    from bench.errors import ConfigError

    profile = _with_measurement(
        load_profile("cpu"), grid_intensity_gco2e_per_kwh=120.0, price_per_kwh=0.3, currency="USD"
    )
    m = profile.measurement
    assert (m.grid_intensity_gco2e_per_kwh, m.price_per_kwh, m.currency) == (120.0, 0.3, "USD")
    for overrides, message in (
        ({"grid_intensity_gco2e_per_kwh": -5.0}, r"--grid-intensity -5\.0: .*gCO2e per kWh, from 0 to 2000"),
        ({"grid_intensity_gco2e_per_kwh": 5000.0}, r"--grid-intensity 5000\.0: .*less than or equal to 2000"),
        ({"price_per_kwh": -0.1}, r"--price-per-kwh -0\.1: .*price per kWh"),
        ({"price_per_kwh": 0.3, "currency": "euro"}, r"--currency 'euro': .*ISO 4217"),
        ({"currency": "USD"}, r"--currency USD without a price: give --price-per-kwh too .*profile 'cpu'"),
    ):
        with pytest.raises(ConfigError, match=message):
            _with_measurement(load_profile("cpu"), **overrides)


def test_the_resume_command_gives_the_grid_options_again() -> None:
    from bench.config import load_profile
    from bench.run.loop import resume_command
    from bench.run.request import RunRequest

    request = RunRequest(profile=load_profile("cpu"), grid_intensity_gco2e_per_kwh=120.0, price_per_kwh=0.3)
    line = resume_command(request, "r1")
    assert line.endswith("run --grid-intensity 120 --price-per-kwh 0.3 --run-id r1")
    assert "--grid" not in resume_command(RunRequest(profile=load_profile("cpu")), "r1")
