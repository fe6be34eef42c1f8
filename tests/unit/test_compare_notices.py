"""Every notice on the compare page is true of the runs it names (issue: a run without any LLM made the page warn
"Different prompts: LLM answers are not comparable")."""

from __future__ import annotations

from typing import Any

from bench.report.compare import comparability
from tests.factories import cell, document


def _run(models: dict[str, dict[str, Any]]) -> Any:
    return document([cell(r, model=m) for m in models for r in (0, 1)], models=models, suite={"models": list(models)})


TRADITIONAL = {"linear-bow": {"kind": "traditional", "params": {"classifier": "logreg"}}}
PROMPT_V1 = {"name": "dspy-chat", "version": 1, "template_sha256": "a" * 64}


def _llm(prompt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"smollm2-135m": {"kind": "llm", "params": {"model": "package:x"}, "info": {"prompt": prompt}}}


def _texts(*docs: Any) -> list[str]:
    return [n.text for n in comparability(list(docs), [f"R{i}" for i in range(len(docs))])]


def test_a_run_without_llms_has_no_prompt_to_differ_in() -> None:
    texts = _texts(_run({**TRADITIONAL, **_llm(PROMPT_V1)}), _run(TRADITIONAL))
    assert not any("prompt" in t.lower() for t in texts)


def test_the_same_llm_with_another_prompt_is_named() -> None:
    other = {**PROMPT_V1, "version": 2, "template_sha256": "b" * 64}
    texts = _texts(_run(_llm(PROMPT_V1)), _run(_llm(other)))
    assert "smollm2-135m: different prompts: its answers are not comparable." in texts


def test_the_same_llm_with_the_same_prompt_is_comparable() -> None:
    assert not any("prompt" in t.lower() for t in _texts(_run(_llm(PROMPT_V1)), _run(_llm(dict(PROMPT_V1)))))


def test_the_same_run_twice_is_said_to_be_one_run() -> None:
    from bench.results import content_hash

    doc = _run(TRADITIONAL)
    doc.content_hash = content_hash(doc.model_dump(mode="json"))
    assert "R0 and R1 are the same run (the same content hash)." in _texts(doc, doc)
    assert not any("same run" in t for t in _texts(doc, _run(TRADITIONAL)))
