"""Own data on the leaderboard (issue 13): an ad-hoc run of a user's file is accepted, its data set stored as
``name@<data key prefix>`` (``validate.data_key``: the file and how it was read) and marked as user data (hash,
rows, classes), and none of its texts is sent."""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import load_profile
from bench.leaderboard import storage
from bench.leaderboard.validate import data_key, prepare
from bench.leaderboard.views import index_page
from bench.results import load_results
from bench.runner import RunRequest, run
from tests.integration.test_own_data import write_reviews


def test_an_adhoc_run_is_accepted_as_user_data_without_its_texts(tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv", n=100, labels=("pos", "neg"))
    (tmp_path / "dups.csv").write_text(data.read_text() + data.read_text().split("\n", 1)[1])  # every row twice
    request = RunRequest(
        profile=load_profile("cpu"),
        suite_given=False,
        reports_dir=tmp_path / "reports",
        datasets=[str(data), str(tmp_path / "dups.csv")],
        models=["linear-bow"],
        text_column="review",
        label_column="stars",
        n_train=40,
        n_test=40,
        repetitions=1,
        min_window_s=0.1,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
    )
    outcome = run(request)
    doc = load_results(outcome.results_path)
    sent = outcome.results_path.read_bytes()
    texts = [line.split(",")[0] for line in data.read_text().splitlines()[1:]]
    assert not [t for t in texts if t.encode() in sent], "a text of the file went into the results"
    assert any("duplicated rows" in w for w in doc.warnings)  # the warning names rows, not texts

    prepared = prepare(json.dumps({"results": json.loads(sent)}).encode())
    content = data_key(doc.datasets["reviews"].pin)  # the file and how it was read (issue 24: not the label names)
    assert content is not None
    row = next(r for r in prepared.rows if r["dataset"].startswith("reviews@"))
    assert row["dataset"] == f"reviews@{content[:12]}" and row["dataset_source"] == "user"
    assert (row["dataset_sha256"], row["dataset_rows"], row["dataset_classes"]) == (content, 100, 2)

    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    storage.insert_submission(engine, prepared, None)
    listed = {d["dataset"]: d for d in storage.datasets(engine)}
    assert listed[f"reviews@{content[:12]}"]["source"] == "user"
    assert "user data: 100 rows, 2 classes" in index_page(engine, static=True)
