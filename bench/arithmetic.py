"""How far an LLM serving is from what the hardware could do (issue 27, item 3): the model's arithmetic per cell and
the energy the same arithmetic costs in a reference. Everything here is derived, never measured.

Per LLM cell and pass (``arithmetic_record``, stored as ``bench.results.Arithmetic``): the tokens the backend
counted (``usage()``: prompt tokens, those read from a reused cache, generated tokens) and the model's arithmetic
``flop = 2 x params x computed_tokens``, where ``params`` is what one token runs through (the catalog's active
parameters for a mixture-of-experts model, else the loaded weights' count, else the catalog's ``params_b``) and the
computed tokens are the prompt tokens not read from a cache plus the generated ones. 2 FLOP per parameter and token: a
multiply and an add per weight (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", C_forward ~ 2N).

Two references for J per FLOP, each a ratio of the cell's gross energy per pass to ``flop x J per FLOP``:

- ``calibration_j_per_flop``: the session's calibration GEMM (``bench.calibration``) on the same device, gross J per
  reference unit / FLOP per unit, averaged over the run's sessions of its first reference (as ``machine_index``);
- ``datasheet_j_per_flop``: on GPU profiles, the datasheet's peak (``[hardware.datasheet]`` of the profile: power in
  W / peak FLOP/s), with its cited source; None where the profile cites none. The column is the one of the run's GPUs
  (``run_gpu_names``: the NVML names its sessions recorded): a ``variants`` entry of the datasheet (another form
  factor, an H100 PCIe card beside the SXM module) whose words the name holds, else the profile's own figures; no
  value, and a label saying why, where the run's GPUs select different columns.

A reference ratio, not a bound: attention over the context is left out of the FLOP count (so long prompts cost more
than it says), and int8, 4-bit or FP8 arithmetic can cost less per operation than the calibration's float32 (CPU) or
float16 (GPU) GEMM, so a ratio below 1 is possible and means no more than that. Import-light: no numpy, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

#: The method label of the stored arithmetic and of every ratio derived from it.
METHOD = "derived:2*params*tokens"
#: FLOP per parameter and token of a forward pass (a multiply and an add).
FLOP_PER_PARAM_TOKEN = 2
#: What every place that shows a ratio says of it.
RATIO_NOTE = (
    "a reference ratio, not a bound: gross energy per pass / (2 x parameters x computed tokens x the reference's J "
    "per FLOP); attention is left out, and int8, 4-bit or FP8 arithmetic can cost less per operation than the "
    "calibration's float32/float16 GEMM"
)


def model_flop(params: int, tokens: int) -> float:
    """``2 x params x tokens`` (FLOP): the matrix arithmetic of ``tokens`` tokens through ``params`` parameters."""
    return float(FLOP_PER_PARAM_TOKEN * params * tokens)


def arithmetic_record(usage: Mapping[str, Any] | None, params: tuple[int, str] | None) -> Any:
    """The ``bench.results.Arithmetic`` of one pass from a backend's ``usage()`` (``input_tokens``,
    ``output_tokens``, optional ``cached_tokens``) and its ``arithmetic_params()`` (parameters per token, source);
    None where either is missing. Raises ValueError for cached tokens outside 0..input tokens."""
    if not usage or params is None or "input_tokens" not in usage:
        return None
    from bench.results import Arithmetic

    prompt = int(usage.get("input_tokens") or 0)
    cached = int(usage.get("cached_tokens") or 0)
    generated = int(usage.get("output_tokens") or 0)
    if not 0 <= cached <= prompt:
        raise ValueError(f"cached_tokens={cached} is not between 0 and the pass's {prompt} prompt tokens")
    computed = prompt - cached + generated
    count, source = params
    return Arithmetic(
        prompt_tokens=prompt,
        cached_tokens=cached,
        generated_tokens=generated,
        computed_tokens=computed,
        params=int(count),
        params_source=source,
        flop=model_flop(int(count), computed),
        method=METHOD,
    )


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


class Reference(NamedTuple):
    """A J-per-FLOP reference: its value (None where none applies; the label then says why) and a label naming it."""

    j_per_flop: float | None
    label: str


def calibration_j_per_flop(doc: Any) -> Reference | None:
    """(gross J per FLOP, a label naming the reference) of a run's calibration jobs: each session's ``j_per_unit /
    unit_flop``, averaged over the sessions of the first reference with an index; None without one."""
    records = [c for c in _get(doc, "calibration") or [] if _get(c, "j_per_unit") is not None]
    if not records:
        return None
    reference = _get(records[0], "reference")
    values = [_get(c, "j_per_unit") / _get(c, "unit_flop") for c in records if _get(c, "reference") == reference]
    return Reference(sum(values) / len(values), f"calibration {reference} ({len(values)} session(s))")


def run_gpu_names(doc: Any) -> list[str]:
    """The NVML names of the GPUs a run recorded, each once, in the order found: every session's machine
    (``environment.sessions[].machine.gpus``: a resumed or merged run has several) and the document's
    (``environment.machine.gpus``); empty where none was recorded (a CPU run, a machine NVML could not read)."""
    environment = _get(doc, "environment") or {}
    machines = [_get(s, "machine") for s in _get(environment, "sessions") or []] + [_get(environment, "machine")]
    names: list[str] = []
    for machine in machines:
        for gpu in (_get(machine, "gpus") or []) if machine else []:
            name = _get(gpu, "name")
            if isinstance(name, str) and name and name not in names:
                names.append(name)
    return names


def _peak_reference(entry: Any, head: str, *, cite: bool) -> Reference | None:
    """J per FLOP of one datasheet column (``power_w / peak_flop_per_s``) labelled ``head``, its figures and (``cite``)
    its source; None where a figure is missing."""
    flop_s, power_w = _get(entry, "peak_flop_per_s"), _get(entry, "power_w")
    if not flop_s or not power_w:
        return None
    label = f"{head}, {_get(entry, 'dtype') or '?'} dense, {flop_s / 1e12:g} TFLOP/s at {power_w:g} W per GPU"
    source = _get(entry, "source")
    return Reference(power_w / flop_s, f"{label} ({source})" if cite and source else label)


def datasheet_j_per_flop(profile: Any, gpu_names: Iterable[str] = ()) -> Reference | None:
    """(J per FLOP at the datasheet's peak: power in W / peak FLOP/s, a label naming the column and its source) of a
    profile's ``[hardware.datasheet]`` for a run whose GPUs NVML named ``gpu_names`` (``run_gpu_names``); None where
    the profile has no datasheet (CPU profiles, GPUs no source was cited for).

    The column: without names (a CPU run, results that recorded none), the profile's own figures, as before. With
    names, those of the profile's models (``[hardware] gpu_models``; a machine's other GPUs were not the run's) each
    select the variant (``datasheet.variants``, another form factor) whose ``name_words`` the name holds as whole
    words, else the profile's own figures (the default). All of them must select the same column: GPUs that select
    different ones, a name two variants match, or GPUs none of which is of the profile's models give a Reference
    with no value and a label saying why, never a guessed column."""
    hardware = _get(profile, "hardware") or {}
    sheet = _get(hardware, "datasheet")
    if not sheet:
        return None
    names = list(dict.fromkeys(n for n in gpu_names if n))
    if not names:
        return _peak_reference(sheet, "datasheet peak", cite=False)
    from bench.config import accepts_gpu_name, gpu_model_matches

    models = list(_get(hardware, "gpu_models") or [])
    pattern = _get(hardware, "gpu_model_pattern")
    theirs = [n for n in names if accepts_gpu_name(models, pattern, n)]
    if not theirs:
        accepted = " | ".join(models) if models else f"/{pattern}/"
        return Reference(
            None,
            f"datasheet peak: none, the run's GPUs ({', '.join(names)}) are not of the profile's models ({accepted}), "
            "whose datasheet it cites",
        )
    variants = list(_get(sheet, "variants") or [])
    chosen: dict[str, Any] = {}
    for name in theirs:
        hits = [v for v in variants if any(gpu_model_matches(w, name) for w in _get(v, "name_words") or [])]
        if len(hits) > 1:
            both = ", ".join(str(_get(v, "name")) for v in hits)
            return Reference(None, f"datasheet peak: none, {name} matches more than one datasheet variant ({both})")
        chosen[name] = hits[0] if hits else None
    if len({id(v) for v in chosen.values()}) > 1:
        which = "; ".join(f"{n}: {_get(v, 'name') if v is not None else 'the default'}" for n, v in chosen.items())
        return Reference(
            None,
            f"datasheet peak: none, the run's GPUs select different datasheet columns ({which}); no one peak applies "
            "to them all",
        )
    variant, named = chosen[theirs[0]], ", ".join(theirs)
    if variant is None:
        return _peak_reference(sheet, f"datasheet peak, the profile's default (no variant for {named})", cite=True)
    return _peak_reference(variant, f"datasheet peak, {_get(variant, 'name')} variant (for {named})", cite=True)


def datasheet_reference(doc: Any) -> Reference | None:
    """``datasheet_j_per_flop`` of a run document: its profile's datasheet for the GPUs it recorded."""
    return datasheet_j_per_flop(_get(doc, "profile"), run_gpu_names(doc))


def reference_ratio(energy_j: float | None, flop: float | None, j_per_flop: float | None) -> float | None:
    """``energy_j / (flop x j_per_flop)``: how many times the reference's energy for the same arithmetic a pass
    took; None where a number is missing or zero."""
    if not energy_j or not flop or not j_per_flop:
        return None
    return energy_j / (flop * j_per_flop)


def _gross_j(energy: Mapping[str, Any]) -> float | None:
    """A cell's gross energy per pass: its components' ``energy_j`` summed (as ``bench.analysis.total_energy_j``,
    not imported: analysis imports this module); None when no component has a number."""
    values = [_get(v, "energy_j") for v in energy.values() if _get(v, "energy_j") is not None]
    return float(sum(values)) if values else None


def cell_ratios(doc: Any, cells: list[Any]) -> dict[str, float | None]:
    """Over ``cells`` that recorded their arithmetic (sound cells, as energy figures use): the mean FLOP per text,
    and the gross energy over the same cells divided by their arithmetic at the calibration's and the datasheet's J
    per FLOP (``x_calibration``, ``x_datasheet``; None where a reference is missing)."""
    pairs = []
    for c in cells:
        arithmetic, energy = _get(c, "arithmetic"), _gross_j(_get(c, "energy") or {})
        if arithmetic is not None and energy is not None and _get(arithmetic, "flop"):
            pairs.append((energy, float(_get(arithmetic, "flop")), _get(c, "n_test") or 0))
    if not pairs:
        return {"flop_per_text": None, "x_calibration": None, "x_datasheet": None}
    energy = sum(p[0] for p in pairs)
    flop = sum(p[1] for p in pairs)
    texts = sum(p[2] for p in pairs)
    calibration = calibration_j_per_flop(doc)
    datasheet = datasheet_reference(doc)
    return {
        "flop_per_text": flop / texts if texts else None,
        "x_calibration": reference_ratio(energy, flop, calibration[0] if calibration else None),
        "x_datasheet": reference_ratio(energy, flop, datasheet[0] if datasheet else None),
    }
