"""The results document a run writes into: the stored run it resumes (same settings, same data) or a new one.

Which document (``choose_document``) is decided apart from opening it (``open_document``), so that the run folder is
held (``bench.run.lock.hold_run_folder``) between the two: nothing is read to resume, or created, before this
process holds the folder. Both read the resolved ``RunPlan`` (``bench.run.resolve``) and the helpers of
``bench.run.plan``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import __version__
from bench.errors import ConfigError
from bench.results import ResultDocument, json_differences, load_results, write_results
from bench.run.plan import _new_run_id, find_resumable, hashed_profile, stored_settings_sha256

if TYPE_CHECKING:
    from bench.run.resolve import RunPlan


@dataclass(frozen=True)
class DocumentChoice:
    """Which results document a run writes into: ``path`` (``<reports>/<run id>/results.json``), and whether it is a
    stored run to ``resume`` (else a new one is created there)."""

    path: Path
    resume: bool

    @property
    def folder(self) -> Path:
        """The run folder: what ``bench.run.lock.hold_run_folder`` holds."""
        return self.path.parent


def choose_document(plan: RunPlan, runs: list[tuple[Path, ResultDocument]]) -> DocumentChoice:
    """The run asked for (``--run-id``: resumed when stored, else new under that id), or the newest unfinished
    compatible one among ``runs`` (``find_resumable``), or a new one under a new run id. Nothing is read or written.

    Raises ConfigError for ``--new`` with the id of a stored run."""
    request = plan.request
    if request.run_id:
        candidate = request.reports_dir / request.run_id / "results.json"
        if candidate.exists() and request.new:
            raise ConfigError(f"--new with --run-id {request.run_id}: that run exists; pick another run id")
        return DocumentChoice(candidate, resume=candidate.exists())
    if not request.new:
        path = find_resumable(runs, plan.profile.name, plan.suite_name, plan.settings_sha256)
        if path is not None:
            return DocumentChoice(path, resume=True)
    run_id = _new_run_id(plan.profile.name, plan.suite_name)
    return DocumentChoice(request.reports_dir / run_id / "results.json", resume=False)


def open_document(plan: RunPlan, session: dict[str, Any], choice: DocumentChoice) -> tuple[Path, ResultDocument, bool]:
    """Open the document ``choose_document`` chose, once this process holds its folder: the stored run, read now
    and returned as stored (the loop adds the session when it has work), or a new document with ``session``
    (``session_record``) as its first session, written. ``plan``: the run, checked (its data sets loaded). Returns
    (results path, document, resumed).

    A run another process made at the chosen path since it was chosen is resumed when it was asked for by
    ``--run-id``, else refused. Raises ConfigError when the stored run was made with other settings or other data, or
    exists under --new."""
    request = plan.request
    settings, settings_sha = plan.settings, plan.settings_sha256
    path = choice.path
    if not choice.resume and path.exists():  # made while this run started, by a run that held the folder then
        if request.new and request.run_id:
            raise ConfigError(
                f"--new with --run-id {request.run_id}: that run exists (another bench run made it while this one "
                "was starting); pick another run id"
            )
        if not request.run_id:
            raise ConfigError(
                f"{path}: another bench run made a run of this name while this one was starting; run again"
            )
        choice = DocumentChoice(path, resume=True)
    if choice.resume:
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
        for name, prepared in plan.datasets.items():
            old = doc.datasets.get(name)
            if old is not None and not old.same_data(prepared.record):
                raise ConfigError(
                    f"{path}: data set {name!r} or its splits changed since this run started; use --new for a fresh run"
                )
        return path, doc, True
    doc = _new_document(plan, session, path.parent.name)
    write_results(doc, path)
    return path, doc, False


def _new_document(plan: RunPlan, session: dict[str, Any], run_id: str) -> ResultDocument:
    """A new results document of run ``run_id`` with ``session`` as its first session, status running."""
    mismatches = list(plan.checks.mismatches)
    now = session["started_at"]
    doc = ResultDocument(
        run_id=run_id,
        status="running",
        created_at=now,
        updated_at=now,
        kit_version=__version__,
        profile=plan.profile.model_dump(mode="json"),
        suite_name=plan.suite_name,
        suite=plan.suite.model_dump(mode="json"),
        settings=plan.settings,
        settings_sha256=plan.settings_sha256,
        hardware_mismatch=mismatches,
        forced=bool(mismatches and plan.request.force),
        environment={"machine": session["machine"], "software": session["software"], "sessions": [session]},
        meters={},
        datasets={n: p.record for n, p in plan.datasets.items()},
        models={},
        cells=[],
    )
    return doc
