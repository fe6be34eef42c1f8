"""The results document a run writes into: the stored run it resumes (same settings, same data) or a new one.

``open_document`` reads the resolved ``RunPlan`` (``bench.run.resolve``) and the helpers of ``bench.run.plan``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import __version__
from bench.errors import ConfigError
from bench.results import ResultDocument, json_differences, load_results, write_results
from bench.run.plan import _new_run_id, find_resumable, hashed_profile, stored_settings_sha256

if TYPE_CHECKING:
    from bench.run.resolve import RunPlan


def open_document(
    plan: RunPlan, session: dict[str, Any], runs: list[tuple[Path, ResultDocument]]
) -> tuple[Path, ResultDocument, bool]:
    """Resume the run asked for (or the newest unfinished compatible one among ``runs``) or start a new document,
    with ``session`` (``session_record``) as its first session; a resumed document is returned as stored (the loop
    adds the session when it has work). ``plan``: the run, checked (its data sets loaded). Returns (results path,
    document, resumed).

    Raises ConfigError when the run asked for was made with other settings or other data, or exists under --new."""
    request = plan.request
    suite, settings, settings_sha = plan.suite, plan.settings, plan.settings_sha256
    datasets, mismatches = plan.datasets, list(plan.checks.mismatches)
    reports_dir = request.reports_dir
    path: Path | None = None
    if request.run_id:
        candidate = reports_dir / request.run_id / "results.json"
        if candidate.exists():
            if request.new:
                raise ConfigError(f"--new with --run-id {request.run_id}: that run exists; pick another run id")
            path = candidate
    elif not request.new:
        path = find_resumable(runs, plan.profile.name, plan.suite_name, settings_sha)
    if path is not None:
        doc = load_results(path)
        if stored_settings_sha256(doc) != settings_sha:
            names = ("now", "in the run")
            diffs = [
                f"profile.{d}"
                for d in json_differences(hashed_profile(plan.profile), hashed_profile(doc.profile), names=names)
            ]
            diffs += [f"settings.{d}" for d in json_differences(settings, doc.settings, names=names)]
            shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
            raise ConfigError(
                f"{path}: this run was made with other settings, so its cells cannot be mixed with new ones "
                f"({shown or 'the settings hash differs'}). Resume it with `--run-id {doc.run_id}` and no other "
                "options, or start a fresh run with another --run-id."
            )
        for name, prepared in datasets.items():
            old = doc.datasets.get(name)
            if old is not None and not old.same_data(prepared.record):
                raise ConfigError(
                    f"{path}: data set {name!r} or its splits changed since this run started; use --new for a fresh run"
                )
        return path, doc, True
    run_id = request.run_id or _new_run_id(plan.profile.name, plan.suite_name)
    path = reports_dir / run_id / "results.json"
    now = session["started_at"]
    doc = ResultDocument(
        run_id=run_id,
        status="running",
        created_at=now,
        updated_at=now,
        kit_version=__version__,
        profile=plan.profile.model_dump(mode="json"),
        suite_name=plan.suite_name,
        suite=suite.model_dump(mode="json"),
        settings=settings,
        settings_sha256=settings_sha,
        hardware_mismatch=mismatches,
        forced=bool(mismatches and request.force),
        environment={"machine": session["machine"], "software": session["software"], "sessions": [session]},
        meters={},
        datasets={n: p.record for n, p in datasets.items()},
        models={},
        cells=[],
    )
    write_results(doc, path)
    return path, doc, False
