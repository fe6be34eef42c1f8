"""What a run is before it runs (bench.run.resolve): the suite after overrides and the files given for its data sets."""

from __future__ import annotations

import pytest

from bench.config import load_profile
from bench.errors import ConfigError
from bench.run.request import RunRequest
from bench.run.resolve import effective_suite


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
