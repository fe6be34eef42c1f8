"""The dataset card (README.md) of the leaderboard's Hugging Face dataset (``dataset.export_hf_dataset``): the Hub's
YAML header (license, one config per table with its Parquet file, each column's dtype) and what the columns mean, how
energy was measured and labelled, and how to cite the paper and the kit."""

from __future__ import annotations

#: The data licence of the exported dataset (SPDX id as the Hub spells it).
LICENSE = "cc-by-4.0"

#: What each column means (units are in the names: _j joules, _s seconds, _wh watt-hours).
COLUMN_DOCS: dict[str, str] = {
    "submission_id": "the leaderboard's id of the submission (a run); joins the three tables",
    "run_id": "the run's id (its folder under reports/)",
    "dataset": "data set (a user's own file: name@<first 12 hex of its data key>)",
    "model": "the kit's model name",
    "repetition": "repetition (train/test split) of the cell",
    "status": "ok or failed",
    "n_test": "test texts of the pass",
    "accuracy": "share of test texts classified correctly (0-1); models: mean over ok cells",
    "duration_s": "one pass over the test split (s)",
    "energy_j": "gross energy of one pass (J), sum of the components with a number",
    "net_energy_j": "energy_j minus idle power x duration (J)",
    "j_per_text": "gross energy per test text (J)",
    "flags": "conditions of the machine during the window (other processes, throttling, temperature)",
    "validity": "implausible readings found by the kit's checks",
    "in_means": "false: failed, invalid or flagged; kept out of every mean",
    "n_flagged": "ok cells with flags (left out of means until redone)",
    "error": "failed cells: the error type and message",
    "energy_j_per_pass": "mean gross energy of one pass over the sound cells (J)",
    "duration_s_per_pass": "mean duration of one pass over the sound cells (s)",
    "wh_per_1000_texts": "j_per_text x 1000 / 3600 (Wh)",
    "j_per_correct": "energy per correct prediction (J)",
    "method_class": "measured, estimated or mixed: what the component methods are",
    "j_per_text_per_index": "j_per_text divided by the machine's calibration index (reference units per text)",
    "gco2e_per_1000_texts": "derived, not measured: gross energy x PUE x the grid intensity the run named",
    "model_revision": "the model's pinned revision (a Hub commit); null where it has none",
    "n_invalid": "ok cells with validity findings (left out of means)",
    "n_repairs": "redo sessions of the run",
}


def _describe(name: str) -> str:
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    if name.endswith("_method"):
        return "the component's energy method label (measured:<meter> or estimated:<model>; null: none)"
    if name.startswith("training_"):
        return "one training pass (fit), as the inference columns; training_reason says why there is none"
    return "as on the leaderboard's pages (see the kit's README, leaderboard section)"


def _yaml_header(tables: dict[str, tuple[tuple[str, str], ...]]) -> list[str]:
    lines = ["---", f"license: {LICENSE}", "pretty_name: bench text-classification inference energy and accuracy"]
    lines += ["task_categories:", "- text-classification", "tags:", "- energy", "- green-ai", "- benchmark"]
    lines.append("configs:")
    for i, name in enumerate(tables):
        lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {name}.parquet"]
        if i == 0:
            lines.append("  default: true")
    lines.append("dataset_info:")
    for name, columns in tables.items():
        lines += [f"- config_name: {name}", "  features:"]
        for column, dtype in columns:
            lines.append(f"  - name: {column}")
            lines.append("    sequence: string" if dtype == "list" else f"    dtype: {dtype}")
    lines.append("---")
    return lines


_BODY = """
# bench: energy and accuracy of text-classification inference

Runs of the bench kit submitted to its leaderboard, exported with
`bench leaderboard export --format hf-dataset -o DIR`. Licence: **CC-BY-4.0** (the numbers; the kit's code has its
own licence). Hidden and replaced submissions are left out. The `models` table holds exactly the rows of the
leaderboard's pages (`datasets/<name>.json`), built from the same rows as the static site.

## Tables

- `cells` (default): one row per cell (data set, model, repetition) of each run.
- `runs`: one row per run (submission): machine, kit version, counts of cells.
- `models`: one row per data set, model and run: the leaderboard's row, with the model's pinned revision.

Load: `datasets.load_dataset("DIR", "models")` (or `"cells"`, `"runs"`), or `pandas.read_parquet("DIR/models.parquet")`.

## How energy was measured and labelled

Energy is per pass over the test split, per component (GPU, CPU, RAM), in joules, **gross** (everything the component
drew during the window); `net_energy_j` subtracts the idle power measured before the run times the duration. Every
component carries a method label: `measured:<meter>` (e.g. NVML, RAPL counters) or `estimated:<model>` (e.g. TDP x
utilisation); a component with neither has no number (null, never 0). `method_class` says whether a row rests on
measured, estimated or mixed components: compare rows of the same class. Cells with `validity` findings (implausible
readings) or `flags` (other processes, throttling, temperature during the window) are kept in `cells`
(`in_means` false) and counted (`n_flagged`, `n_invalid`), and left out of every mean and ranking, exactly as on the
leaderboard. CO2e is derived, not measured.

## Citation

Cite the paper whose measurements the kit reruns, and the kit (see CITATION.cff in its repository):

```bibtex
@article{zschache2026comparing,
  title   = {Comparing energy consumption and accuracy in text classification inference},
  author  = {Zschache and Hartwig},
  journal = {Scientific Reports},
  year    = {2026},
  note    = {arXiv:2508.14170}
}
@software{bench_kit,
  title  = {bench: a reproducibility kit for energy and accuracy of text-classification inference},
  author = {{bench contributors}}
}
```

## Publishing

Not done by the kit: `huggingface_hub.HfApi(token=...).upload_folder(folder_path="DIR", repo_id="ORG/NAME",
repo_type="dataset")` (a write token from the Hub's settings, or `HF_TOKEN`).
"""


def dataset_card(tables: dict[str, tuple[tuple[str, str], ...]], counts: dict[str, int]) -> str:
    """The card's text: YAML header (``license``, ``configs`` with each table's Parquet file, ``dataset_info``
    features with each column's dtype: string, int64, float64, bool, or a sequence of strings), the body, and per
    table its rows (``counts``) and each column with its dtype and meaning."""
    lines = _yaml_header(tables) + _BODY.splitlines()
    lines += ["## Columns", ""]
    for name, columns in tables.items():
        lines += [f"### `{name}` ({counts.get(name, 0)} rows)", "", "| column | dtype | meaning |", "|---|---|---|"]
        for column, dtype in columns:
            lines.append(f"| `{column}` | {'list of string' if dtype == 'list' else dtype} | {_describe(column)} |")
        lines.append("")
    return "\n".join(lines)
