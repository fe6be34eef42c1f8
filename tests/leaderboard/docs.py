"""Result documents and submission bodies for the leaderboard's tests (complete, valid, provenance present)."""

from __future__ import annotations

import json
from typing import Any

from bench.results import ResultDocument, content_hash
from tests import factories


def valid_document(run_id: str = "cpu-default-test", **overrides: Any) -> ResultDocument:
    """A complete, plausible run of two repetitions of one model on the 'toy' data set."""
    fields: dict[str, Any] = dict(
        run_id=run_id,
        status="complete",
        profile={"name": "cpu", "hardware": {"device": "cpu", "gpu_count": 0}},
        environment={
            "machine": {"cpu_model": "Test CPU 9000", "gpus": [], "ram_gb": 16.0},
            "software": {"kit_version": "0.1.0", "git_commit": "abc"},
        },
    )
    fields.update(overrides)
    return factories.document(**fields)


def signed(doc: ResultDocument | dict[str, Any]) -> dict[str, Any]:
    """The document as `bench run` writes it: JSON with its content hash."""
    data = doc.model_dump(mode="json") if isinstance(doc, ResultDocument) else dict(doc)
    data.pop("content_hash", None)
    data["content_hash"] = content_hash(data)
    return data


def body(doc: ResultDocument | dict[str, Any], report_html: str | None = "<html><body>report</body></html>") -> bytes:
    """A submission body for ``doc`` (hashed)."""
    return json.dumps({"results": signed(doc), "report_html": report_html}).encode()


def gpu_document(machine: str = "h100", seed: int = 0, run_id: str | None = None) -> ResultDocument:
    """A synthetic GPU run on the paper's 'tomatoes' set (four models, two repetitions), valid and plausible."""
    from bench.report.sample import sample_document

    doc = sample_document(("tomatoes",), repetitions=2, models=4, n_test=20, failures=False, machine=machine, seed=seed)
    if run_id is not None:
        doc.run_id = run_id
    return doc
