"""The run options are declared once (bench/run/options.py): the `bench run` and `bench slurm` parsers, the request,
the container's arguments, every Slurm task's line and the resume command are built from that one list."""

from __future__ import annotations

import dataclasses
import io
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.config import load_profile
from bench.run import options
from bench.run.options import RUN_OPTIONS, RunOption
from bench.run.request import RunRequest


def _help(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(out.getvalue().split())  # argparse wraps lines at the terminal's width


def test_every_declared_field_is_a_request_field() -> None:
    names = {f.name for f in dataclasses.fields(RunRequest)}
    for option in RUN_OPTIONS:
        if option.field is not None:
            assert option.field.partition(".")[0] in names, option.flag
    assert len({o.flag for o in RUN_OPTIONS}) == len(RUN_OPTIONS)


def test_an_option_added_to_the_declaration_reaches_every_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One record appended: `bench run --help`, `bench slurm --help`, the request's fields, the container's
    arguments, a Slurm task's line and the resume command all carry it, with nothing else touched."""
    added = RunOption(
        "--cooldown-s",
        "seconds to wait between cells (a new option of this test)",
        field="cooldown_s",
        type=float,
        slurm=True,
        container=True,
        task=True,
        resume=True,
    )
    monkeypatch.setattr(options, "RUN_OPTIONS", [*RUN_OPTIONS, added])
    assert "--cooldown-s COOLDOWN_S seconds to wait between cells (a new option of this test)" in _help("run")
    assert "--cooldown-s COOLDOWN_S seconds to wait between cells" in _help("slurm")

    args = build_parser().parse_args(["run", "--cooldown-s", "2.5", "--repetitions", "2"])
    assert options.run_fields(args)["cooldown_s"] == 2.5
    assert options.container_args(args) == ["--repetitions", "2", "--cooldown-s", "2.5"]
    slurm = build_parser().parse_args(["slurm", "--profile", "cpu", "--output", "o", "--cooldown-s", "2.5"])
    assert options.run_fields(slurm, "slurm")["cooldown_s"] == 2.5
    assert options.task_args({"cooldown_s": 2.5, "repetitions": 2}) == ["--repetitions", "2", "--cooldown-s", "2.5"]

    # a request that has the field (the new option's field would be added to RunRequest with it)
    with_field = dataclasses.make_dataclass("Request", [("cooldown_s", float | None, None)], bases=(RunRequest,))
    request = with_field(profile=load_profile("cpu"), reports_dir=tmp_path, cooldown_s=2.5)
    assert options.resume_command(request, "r1") == f"bench run --reports-dir {tmp_path} --cooldown-s 2.5 --run-id r1"


def test_the_request_is_built_through_the_declaration() -> None:
    args = build_parser().parse_args(
        shlex.split(
            "run --profile cpu --suite smoke --run-id r --repetitions 2 --min-window-s 0.5 --idle-s 0 --no-codecarbon "
            "--data fktg=/d/f.csv --label-map A=x,B=y --serving batched --batch-size 4 --currency usd "
            "--price-per-kwh 0.3 --no-progress --nodes 2 --truncate"
        )
    )
    request = options.request_from_args(args)
    assert (request.profile.name, request.suite_name, request.suite_given, request.run_id) == (
        "cpu",
        "smoke",
        True,
        "r",
    )
    assert (request.repetitions, request.min_window_s, request.idle_baseline_s) == (2, 0.5, 0.0)
    assert request.codecarbon is False and request.progress is False and request.nodes == 2 and request.truncate
    assert request.data_paths == {"fktg": "/d/f.csv"} and request.label_map == {"A": "x", "B": "y"}
    assert request.serving == {"serving": "batched", "batch_size": 4}
    assert (request.currency, request.price_per_kwh) == ("USD", 0.3)
    assert request.reports_dir == Path("reports") and request.models is None and request.datasets is None
    profile = options.run_profile(request)  # what the plan runs with
    assert profile.llm.truncate and profile.measurement.currency == "USD" and profile.measurement.price_per_kwh == 0.3
    assert options.measurement_options(request) == {"price_per_kwh": "--price-per-kwh", "currency": "--currency"}
    plain = options.request_from_args(build_parser().parse_args(["run"]))
    assert plain.suite_name == "default" and not plain.suite_given and plain.serving == {} and plain.codecarbon is None
    assert options.run_profile(plain) is plain.profile  # nothing overridden: the profile as loaded


def test_serving_options_reach_the_container() -> None:
    """`--serving`, `--batch-size`, `--dtype` and `--quantization` were left off the container's arguments when they
    were listed by hand: the run inside ran the profile's serving."""
    args = build_parser().parse_args(
        shlex.split("run --serving scoring --batch-size 8 --dtype float32 --quantization int8")
    )
    passed = options.container_args(args)
    again = build_parser().parse_args(["run", *passed])
    for key in ("serving", "batch_size", "dtype", "quantization"):
        assert getattr(again, key) == getattr(args, key), key


def test_a_stored_run_restores_the_options_not_given(tmp_path: Path) -> None:
    from tests.factories import document

    doc = document()
    doc.suite = {**doc.suite, "repetitions": 3, "n_train": 50}
    doc.settings = {**doc.settings, "min_window_s": 0.25, "codecarbon": False, "nodes": 2, "label_map": {"A": "x"}}
    request = RunRequest(profile=load_profile("cpu"), min_window_s=1.0)
    restored = options.restored_fields(request, doc)
    assert restored["repetitions"] == 3 and restored["n_train"] == 50 and restored["codecarbon"] is False
    assert restored["nodes"] == 2 and restored["label_map"] == {"A": "x"}
    assert "min_window_s" not in restored  # given now: it wins
