"""A stored run whose cells were computed by a method this kit no longer uses is not resumed into a mix (issue 24):
label scoring by the mean log-probability per token, and bag-of-words that took a Chinese sentence as one word."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError
from bench.run.models import check_stored_methods

SCORING_NOW = {"info": {"decoding": "label-likelihood", "scoring_rule": {"rule": "sum-logprob-label-and-end-marker"}}}
SCORING_BEFORE = {"info": {"decoding": "label-likelihood"}}
BOW_NOW = {"info": {"features": "bow", "tokenisation": {"rule": "by the data's script, per data set at fit"}}}
BOW_BEFORE = {"info": {"features": "bow"}}


def test_a_run_of_this_kits_methods_resumes() -> None:
    check_stored_methods({"m[serving=scoring]": SCORING_NOW, "linear-bow": BOW_NOW}, {"zh": "und-Hani"})
    check_stored_methods({"m": {"info": {"decoding": "greedy"}}}, {})


def test_mean_rule_scoring_cells_are_not_mixed_with_the_sum_rule() -> None:
    with pytest.raises(ConfigError, match=r"model m\[serving=scoring\]: .*mean log-probability per token"):
        check_stored_methods({"m[serving=scoring]": SCORING_BEFORE}, {"en": "en"})


def test_old_bag_of_words_cells_on_a_spaceless_script_are_not_mixed() -> None:
    with pytest.raises(ConfigError, match=r"model linear-bow: .*split zh \(written without spaces\)"):
        check_stored_methods({"linear-bow": BOW_BEFORE}, {"zh": "und-Hani", "en": "en"})
    check_stored_methods({"linear-bow": BOW_BEFORE}, {"en": "en", "file": "und"})  # spaced text split as before
