"""What a run is before it runs (bench.run.resolve): the suite after overrides and the files given for its data sets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.config import load_profile
from bench.errors import ConfigError
from bench.results import ResultDocument, write_results
from bench.run.plan import settings_sha256, stored_settings_sha256
from bench.run.progress import SessionStart
from bench.run.request import RunRequest
from bench.run.resolve import effective_suite, resolve_plan
from tests import factories


def test_a_data_file_for_a_data_set_the_run_does_not_have_is_refused() -> None:
    """`bench run --data mine=tiny.csv` once ran the suite's own data set, exited 0 and never used the file."""
    request = RunRequest(profile=load_profile("cpu"), suite_name="default", data_paths={"mine": "tiny.csv"})
    with pytest.raises(ConfigError, match=r"--data mine=\.\.\..*'mine'.*data sets .*: tomatoes-offline"):
        effective_suite(request)


def test_the_data_sets_named_are_those_left_after_dataset() -> None:
    request = RunRequest(
        profile=load_profile("cpu"),
        suite_name="offline-all",
        datasets=["imdb-offline"],
        data_paths={"bbc-offline": "bbc.csv"},
    )
    with pytest.raises(ConfigError, match=r"narrowed by --dataset\): imdb-offline$"):
        effective_suite(request)


def test_a_data_file_for_a_data_set_of_the_run_is_taken() -> None:
    request = RunRequest(profile=load_profile("cpu"), suite_name="default", data_paths={"tomatoes-offline": "x.csv"})
    assert effective_suite(request).datasets == ["tomatoes-offline"]


# --- repetitions (issue 24, item 6): `--repetitions 2` ran setfit once, the cpu profile's per-model count winning ----

CPU_DEFAULT_OWN = {"setfit": 1, "smollm2-135m[serving=scoring]": 1}


def test_an_explicit_repetitions_applies_to_every_model() -> None:
    plan = resolve_plan(RunRequest(profile=load_profile("cpu"), repetitions=2))
    assert plan.suite.model_repetitions == {}
    assert {m: plan.suite.repetitions_of(m) for m in plan.suite.models} == {m: 2 for m in plan.suite.models}
    assert dict(plan.repetitions_replaced) == CPU_DEFAULT_OWN  # what the header names
    # a model narrowed to, and a configuration the suite does not hold, run it too
    setfit = effective_suite(RunRequest(profile=load_profile("cpu"), models=["setfit"], repetitions=3))
    assert setfit.repetitions_of("setfit") == 3
    other = RunRequest(profile=load_profile("cpu"), models=["smollm2-135m[serving=sequential]"], repetitions=3)
    assert effective_suite(other).repetitions_of("smollm2-135m[serving=sequential]") == 3


def test_without_repetitions_the_profiles_per_model_repetitions_stay_the_defaults() -> None:
    profile = load_profile("cpu")
    plan = resolve_plan(RunRequest(profile=profile))
    # the suite recorded in the settings is the profile's, unchanged: the settings hash of such runs stays
    assert plan.settings["suite"] == profile.suite("default").model_dump(mode="json")
    assert plan.suite.model_repetitions == CPU_DEFAULT_OWN and plan.suite.repetitions_of("linear-bow") == 10


def _stored(tmp_path: Path, run_id: str, **suite_update: object) -> ResultDocument:
    """A stored, interrupted run of the cpu default suite (changed by ``suite_update``) with no cells yet: its
    settings and hash as the run recorded them."""
    plan = resolve_plan(RunRequest(profile=load_profile("cpu")))
    suite = plan.suite.model_copy(update=suite_update)
    settings = {**plan.settings, "suite": suite.model_dump(mode="json")}
    doc = factories.document(
        cells=[],
        run_id=run_id,
        status="interrupted",
        profile=plan.profile.model_dump(mode="json"),
        suite=suite.model_dump(mode="json"),
        settings=settings,
        settings_sha256=settings_sha256(plan.profile, settings),
    )
    write_results(doc, tmp_path / run_id / "results.json")
    return doc


@pytest.mark.parametrize(
    ("suite_update", "setfit"),
    [
        ({}, 1),  # started without --repetitions: 10, setfit 1
        ({"repetitions": 2}, 1),  # started with --repetitions 2 before this change: setfit kept its 1
        ({"repetitions": 2, "model_repetitions": {}}, 2),  # started with --repetitions 2 now: every model 2
    ],
)
def test_a_stored_run_resumed_by_its_id_alone_keeps_its_grid(
    tmp_path: Path, suite_update: dict[str, object], setfit: int
) -> None:
    doc = _stored(tmp_path, "r1", **suite_update)
    resumed = resolve_plan(
        RunRequest(profile=load_profile("cpu"), reports_dir=tmp_path, run_id="r1", suite_given=False)
    )
    assert resumed.suite.repetitions_of("setfit") == setfit
    assert resumed.suite.model_dump(mode="json") == doc.suite
    assert resumed.settings_sha256 == stored_settings_sha256(doc), "the run resumes: same settings hash"


def test_only_an_explicit_repetitions_is_named_as_replacing_the_suites(tmp_path: Path) -> None:
    assert dict(resolve_plan(RunRequest(profile=load_profile("cpu"))).repetitions_replaced) == {}
    _stored(tmp_path, "r1", repetitions=2)  # a stored run's own grid, restored by its id: nothing replaced now
    by_id = RunRequest(profile=load_profile("cpu"), reports_dir=tmp_path, run_id="r1", suite_given=False)
    assert dict(resolve_plan(by_id).repetitions_replaced) == {}


def test_the_header_says_the_repetitions_when_they_differ() -> None:
    start = SessionStart(run_id="r", profile="cpu", suite="default", cells=3, skipped=0, resumed=False, meters={})
    assert start.repetitions_line() == ""
    per_model = dataclasses.replace(start, repetitions=10, per_model=(("setfit", 1),))
    assert per_model.repetitions_line() == "repetitions: 10 per model, except setfit 1"
    replaced = dataclasses.replace(start, repetitions=2, replaced=(("setfit", 1),))
    assert replaced.repetitions_line() == (
        "repetitions: 2 for every model (--repetitions 2, over the suite's own per-model repetitions: setfit 1)"
    )


def test_a_model_outside_the_suite_is_refused_naming_how_to_run_it() -> None:
    """`bench run --model smollm2-135m-gguf` on the cpu profile: not in its default suite, and the message says the
    command that runs it (an ad-hoc suite with its data named), and a suite that has the model where one does; that
    command resolves to the ad-hoc suite of that data set and model."""
    with pytest.raises(ConfigError) as caught:
        effective_suite(RunRequest(profile=load_profile("cpu"), models=["smollm2-135m-gguf"]))
    message = str(caught.value)
    assert "--model smollm2-135m-gguf: not in suite 'default' of profile 'cpu'" in message
    command = "bench run --suite adhoc --dataset tomatoes-offline --model smollm2-135m-gguf"
    assert command in message and "reviews.csv" in message
    adhoc = RunRequest(
        profile=load_profile("cpu"),
        suite_name="adhoc",
        suite_given=True,
        datasets=["tomatoes-offline"],
        models=["smollm2-135m-gguf"],
    )
    suite = effective_suite(adhoc)
    assert suite.models == ["smollm2-135m-gguf"] and suite.datasets == ["tomatoes-offline"]
    with pytest.raises(ConfigError, match=r"suite 'default' or 'paper' or 'serving' has it \(--suite default\)"):
        effective_suite(RunRequest(profile=load_profile("cpu"), suite_name="smoke", models=["smollm2-135m"]))
