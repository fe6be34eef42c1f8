"""The report names the scoring rule a scoring configuration's cells were ranked by (issue 24, item 2)."""

from __future__ import annotations

from bench.backends.zero_shot import SCORING_RULE_INFO
from bench.report.sections.serving import SCORING_NOTE, scoring_note


def test_the_note_names_the_recorded_rule_or_the_earlier_mean_rule() -> None:
    now = {"models": {"m": {"info": {"decoding": "label-likelihood", "scoring_rule": dict(SCORING_RULE_INFO)}}}}
    note = scoring_note(now, "m")
    assert "end marker" in note and "lm-evaluation-harness" in note and note.endswith("generated answer")
    before = {"models": {"m": {"info": {"decoding": "label-likelihood"}}}}
    assert "mean log-probability per token" in scoring_note(before, "m")
    assert scoring_note({"models": {}}, "m") == scoring_note(None, "m") == SCORING_NOTE
