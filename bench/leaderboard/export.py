"""``bench leaderboard export -o site/``: the leaderboard as static files, for a leaderboard kept in git.

The same pages and JSON as the service, at the same relative paths (so links work from any web server or from
disk): index.html, datasets.json, submissions.json, datasets/<name>.html|.json|.csv, submissions/<id>.html|.json,
(and each further page and sort of a data set as datasets/<name>+<sort>+<page>.html, linked from the first),
submissions/<id>/results.json and submissions/<id>/report.html. Hidden and replaced submissions are left out. Files
are written through a temporary name and renamed, and files of submissions and data sets no longer visible are
removed, so the folder always mirrors the database.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.fsutil import atomic_write_bytes
from bench.leaderboard import storage, views
from bench.leaderboard.dataset import export_rows
from bench.leaderboard.service import dumps


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _remove_except(folder: Path, keep: set[str]) -> None:
    """Delete every entry of ``folder`` whose name is not in ``keep`` (no-op when the folder does not exist)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def export_site(engine: Any, output: Path | str) -> dict[str, int]:
    """Write the static site to ``output``; returns counts of what was written. Its data sets' CSV and JSON and its
    submissions' JSON come from ``dataset.export_rows``, the rows the Hugging Face dataset is built from."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "index.html", views.index_page(engine, static=True))
    shared = export_rows(engine)
    datasets = shared.datasets
    _write(out / "datasets.json", dumps({"datasets": datasets}))
    dataset_files: set[str] = set()
    pages = 0
    for entry in datasets:
        name = entry["dataset"]
        stem = out / "datasets" / views.name_path(name)
        dataset_files.update(stem.name + ext for ext in (".csv", ".json"))
        data: dict[str, Any] = {}
        for sort in storage.SORTS:  # every sort, every page: the static copy has all rows a reader can page to
            offset = 0
            while True:
                data = views.leaderboard_data(engine, name, storage.Filters(), sort, offset=offset)
                page_name = views.static_page_name(name, sort, offset // data["limit"] + 1)
                dataset_files.add(page_name)
                _write(stem.with_name(page_name), views.leaderboard_page(engine, data, static=True))
                offset += data["limit"]
                if offset >= data["total"]:
                    break
            pages += offset // data["limit"]
        everything = shared.by_dataset[name]
        _write(stem.with_name(stem.name + ".csv"), views.leaderboard_csv(everything))
        _write(
            stem.with_name(stem.name + ".json"),
            dumps(
                views.leaderboard_json(dict(data, sort="accuracy", offset=0, rows=everything, limit=len(everything)))
            ),
        )
    # A data set whose only submissions were hidden since the last export (spam with its own data set name) must not
    # stay published: anything in datasets/ that is not a page of a visible data set goes.
    _remove_except(out / "datasets", dataset_files)
    summaries = shared.summaries
    total = len(summaries)
    _write(
        out / "submissions.json",
        dumps(
            {
                "total": total,
                "limit": total,
                "offset": 0,
                "submissions": [views.submission_json(s, []) | {"rows": None} for s in summaries],
            }
        ),
    )
    keep = {str(s["id"]) for s in summaries}
    folder = out / "submissions"
    for summary in summaries:
        sid = summary["id"]
        full = storage.get_submission(engine, sid, with_document=True)
        assert full is not None
        rows = shared.by_submission[sid]
        replaces = storage.replaced_submissions(engine, sid)
        _write(folder / f"{sid}.html", views.submission_page(summary, rows, static=True, replaces=replaces))
        _write(folder / f"{sid}.json", dumps(views.submission_json(summary, rows, replaces)))
        _write(folder / str(sid) / "results.json", full["document"])
        _write(folder / str(sid) / "report.html", views.report_page(full["document"]))
    if folder.is_dir():  # a submission hidden since the last export must not stay published
        for path in folder.iterdir():
            if path.name.split(".")[0] not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return {"datasets": len(datasets), "pages": pages, "submissions": len(summaries)}
