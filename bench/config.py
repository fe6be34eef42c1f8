"""Hardware profiles, suites and run settings: pydantic models, TOML in, no side effects.

A hardware profile (``hardware_profiles/<name>.toml``) says what machine it expects, which container image it uses,
how to measure on it, and which suites (dataset x model grids) it can run. Unknown keys are errors (a typo'd key must
not be silently ignored), and so are wrong types; every message names the file and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from bench import SOURCE_ROOT
from bench.catalog.models import base_model_name  # light, and it does not import bench.config: no cycle
from bench.errors import ConfigError, did_you_mean

#: Schema 3 (hardware.device "rocm" and "mps") reads schemas 1 and 2 too; schema 2 brought hardware.gpu_models,
#: gpu_count_min and gpu_memory_variants_gb.
PROFILE_SCHEMA_VERSION = 3

#: Where a profile's backends run (``[hardware] device``): ``cpu``; ``cuda``, NVIDIA GPUs (PyTorch's CUDA build,
#: vLLM's CUDA build); ``rocm``, AMD GPUs (PyTorch's ROCm build, whose device is still called ``cuda`` and which sets
#: ``torch.version.hip``; vLLM's ROCm build); ``mps``, Apple Silicon's GPU (PyTorch's ``mps`` device through Metal;
#: no vLLM, the HF pipeline serves the LLMs).
Device = Literal["cpu", "cuda", "rocm", "mps"]

#: The devices of discrete GPUs: counted, matched by model and memory against the profile, placed on by their memory
#: (``bench.catalog.placement``), metered by the device layer (``bench.devices``: NVML, AMD SMI).
GPU_DEVICES: tuple[str, ...] = ("cuda", "rocm")

#: The profile schema a device first appears in: an older profile naming it is refused (it would not read in the kit
#: the older schema belongs to).
DEVICE_SINCE_SCHEMA: dict[str, int] = {"cpu": 1, "cuda": 1, "rocm": 3, "mps": 3}


def torch_device(device: str) -> str:
    """PyTorch's name for a profile's ``device`` (or a backend's, e.g. ``rocm:1``): ``rocm`` is ``cuda`` (PyTorch's
    ROCm build keeps the CUDA device name on HIP), the others are their own names."""
    kind, sep, index = device.partition(":")
    return f"cuda{sep}{index}" if kind == "rocm" else device


#: Where profiles live: $BENCH_PROFILES_DIR, else ``hardware_profiles/`` of the source checkout.
DEFAULT_PROFILES_DIR = SOURCE_ROOT / "hardware_profiles"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A GPU model name is split into words at these characters: NVML names GPUs "NVIDIA H100 80GB HBM3",
#: "NVIDIA A100-SXM4-80GB", "Tesla V100-SXM2-32GB", "NVIDIA L40S" (AMD's SMI: "AMD Instinct MI250X/MI250").
_NAME_SEPARATORS = re.compile(r"[\s\-/_,()]+")

#: The smallest share of a memory size (a datasheet's "80 GB", i.e. 80 GiB) a GPU's total as NVML reports it may be
#: and still be that size: ECC on GDDR6 keeps 1/16 (an L4 of 24 GB reports 23,034 MiB, 93.7%) and the driver a little
#: more; an H100 80GB HBM3 reports 81,559 MiB (99.6%), an H100 NVL 94 GB 95,830 MiB (99.6%).
MEMORY_VARIANT_SHARE = 0.9


def gpu_name_words(name: str) -> tuple[str, ...]:
    """``name``'s words, upper case: "NVIDIA A100-SXM4-80GB" -> ("NVIDIA", "A100", "SXM4", "80GB")."""
    return tuple(word.upper() for word in _NAME_SEPARATORS.split(name) if word)


def gpu_model_matches(model: str, name: str) -> bool:
    """Whether ``model`` (a profile's ``gpu_models`` entry) names the GPU NVML calls ``name``: its words appear in
    ``name``'s words, in order and next to each other, each whole (case-insensitive). "H100" matches "NVIDIA H100
    80GB HBM3", "NVIDIA H100 PCIe" and "NVIDIA H100 NVL", not "NVIDIA GH200 480GB"; "L4" matches "NVIDIA L4", not
    "NVIDIA L40S"; "A10" matches "NVIDIA A10", not "NVIDIA A100-SXM4-80GB" nor "NVIDIA A10G"."""
    wanted, words = gpu_name_words(model), gpu_name_words(name)
    if not wanted:
        return False
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def accepts_gpu_name(gpu_models: list[str], gpu_model_pattern: str | None, name: str) -> bool:
    """Whether a GPU NVML calls ``name`` is of the models a profile's ``[hardware]`` accepts: ``gpu_models`` by whole
    words (``gpu_model_matches``), else the schema-1 ``gpu_model_pattern`` searched as a regular expression; False
    where neither is given (``HardwareSpec.accepts_gpu``; ``bench.arithmetic`` on a stored profile's JSON form)."""
    if gpu_models:
        return any(gpu_model_matches(model, name) for model in gpu_models)
    if gpu_model_pattern:
        return re.search(gpu_model_pattern, name, re.IGNORECASE) is not None
    return False


#: FLOP/s per GPU a datasheet peak may state (``DatasheetPeak``): 0.1 TFLOP/s to 100 PFLOP/s.
PEAK_FLOP_PER_S_RANGE = (1e11, 1e17)

#: W per GPU a datasheet's power may state (``DatasheetPeak``, its variants): 10 W to 5,000 W. Around every
#: accelerator a profile cites (the shipped ones: an L4's 72 W board to a GH200 or B200 module's 1,000 W, the
#: superchip module's power being CPU + GPU + memory) with room on both sides; and narrower than a factor of 1,000,
#: so a figure typed in kW (0.35 for 350 W) or in mW (350000) is outside it whatever the GPU: any value in the range
#: divided by 1,000 is below 10, multiplied by 1,000 above 5,000.
POWER_W_RANGE = (10.0, 5000.0)


class _PeakFigures(_Strict):
    """The figures of one datasheet column: peak, its arithmetic, the power it is given at, and the source."""

    peak_flop_per_s: Annotated[float, Field(gt=0)] = Field(description="dense (no sparsity) peak, FLOP/s per GPU")
    dtype: str = Field(description="the arithmetic the peak is for, e.g. bfloat16 (Tensor Cores)")
    power_w: Annotated[float, Field(gt=0)] = Field(description="the power the peak is given at (max TDP), W per GPU")
    source: str = Field(min_length=1, description="the datasheet: title, version, URL, and which column")

    @field_validator("peak_flop_per_s")
    @classmethod
    def _plausible_peak(cls, value: float) -> float:
        """A peak typed in TFLOP/s (``989.5``) or with a wrong exponent would make every reference ratio wrong by
        orders of magnitude: accepted are 1e11..1e17 FLOP/s per GPU (0.1 TFLOP/s to 100 PFLOP/s, around every
        accelerator's datasheet: an H100 SXM's dense BF16 is 989.5e12)."""
        if not PEAK_FLOP_PER_S_RANGE[0] <= value <= PEAK_FLOP_PER_S_RANGE[1]:
            raise ValueError(
                f"peak_flop_per_s = {value:g} is not a GPU's peak in FLOP/s (expected {PEAK_FLOP_PER_S_RANGE[0]:g} to "
                f"{PEAK_FLOP_PER_S_RANGE[1]:g}); write it in FLOP/s, e.g. 989.5e12 for 989.5 TFLOP/s"
            )
        return value

    @field_validator("power_w")
    @classmethod
    def _plausible_power(cls, value: float) -> float:
        """A power typed in kW (``0.35``) or mW (``350000``) would make the datasheet reference, and every report's
        ``x_datasheet``, 1,000 times off: accepted are ``POWER_W_RANGE`` W per GPU (10 to 5,000 W)."""
        low, high = POWER_W_RANGE
        if not low <= value <= high:
            slip = "kW" if value < low else "mW"
            raise ValueError(
                f"power_w = {value:g} is not a GPU's datasheet power in W (expected {low:g} to {high:g} W per GPU); "
                f"written in {slip}? write it in W, e.g. 350 for a 350 W (0.35 kW, 350000 mW) board"
            )
        return value


class DatasheetVariant(_PeakFigures):
    """Another column of the datasheet: a form factor of the profile's GPU model with its own peak and power (an H100
    PCIe card beside the H100 SXM module), chosen for a run whose GPUs' NVML name matches ``name_words``
    (``bench.arithmetic.datasheet_j_per_flop``)."""

    name: str = Field(min_length=1, description="the variant as its datasheet column names it, e.g. 'H100 PCIe'")
    name_words: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = Field(
        description="the NVML names it applies to: each entry one or more whole words of the name, in order and next "
        "to each other, case-insensitive (as gpu_models, bench.config.gpu_model_matches): 'PCIe' matches 'NVIDIA H100 "
        "PCIe', '80GB PCIe' matches 'NVIDIA A100 80GB PCIe' but not 'NVIDIA A100-PCIE-40GB'"
    )

    @field_validator("name_words")
    @classmethod
    def _words_of_a_name(cls, value: list[str]) -> list[str]:
        """Each entry must hold a word (``gpu_name_words``): one of separators only ('-', ' ') would match no name."""
        for entry in value:
            if not gpu_name_words(entry):
                raise ValueError(f"name_words entry {entry!r} holds no word of a GPU name (e.g. 'PCIe', 'NVL')")
        return value


class DatasheetPeak(_PeakFigures):
    """A GPU's peak dense matrix throughput and power from its datasheet, per GPU, with the source cited: the
    ``datasheet`` reference of ``bench.arithmetic`` (J per FLOP at peak = ``power_w / peak_flop_per_s``). Its own
    figures are the default; ``variants`` are the datasheet's other form factors, each chosen by the NVML name of the
    GPUs a run found. Reference data, not a setting of the numbers: left out of the settings hash
    (``bench.run.plan.hashed_profile``)."""

    variants: list[DatasheetVariant] = Field(
        default_factory=list,
        description="other form factors of the model ([[hardware.datasheet.variants]]), each with the whole words of "
        "the NVML names it applies to and its own figures and source; a run whose GPUs match none uses the figures "
        "above, one whose GPUs select different entries none (bench.arithmetic.datasheet_j_per_flop)",
    )

    @model_validator(mode="after")
    def _variants_distinct(self) -> DatasheetPeak:
        """Variant names are unique, and no two variants' ``name_words`` are such that every NVML name one of them
        matches the other matches too (which of them would apply? ``bench.arithmetic.datasheet_j_per_flop`` would give
        no value at report time).

        The rule follows the matching (``gpu_model_matches``: an entry's words appear, whole, in order and next to
        each other, in the name): two entries overlap when one's words appear so in the other's ("PCIe" in "H100
        PCIe", equal words in any case). Entries that neither holds ("PCIe" and "NVL", "80GB PCIe" and "PCIe 40GB")
        select different names; a name holding both would still be refused at report time, with its reason."""
        names = [v.name for v in self.variants]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"datasheet variants named more than once: {twice}")
        for i, first in enumerate(self.variants):
            for second in self.variants[i + 1 :]:
                for a in first.name_words:
                    for b in second.name_words:
                        if gpu_model_matches(a, b) or gpu_model_matches(b, a):
                            short, long = (a, b) if len(gpu_name_words(a)) <= len(gpu_name_words(b)) else (b, a)
                            raise ValueError(
                                f"name_words {a!r} of variant {first.name!r} and {b!r} of variant {second.name!r} "
                                f"overlap: every GPU name holding {long!r} also holds {short!r} as whole words, so it "
                                "would match both variants and select neither; give them words that no one name holds "
                                "both of (e.g. '80GB PCIe' and 'PCIe 40GB', not 'PCIe' and 'H100 PCIe')"
                            )
        return self

    @model_serializer(mode="wrap")
    def _variants_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """``variants`` (added after runs were stored) is dumped only when the profile has some, so a results file of
        a profile without them keeps the form it had."""
        return _without_later_defaults(handler(self), {"variants": []})


#: Number formats a GPU's matrix (tensor) units may list in ``[hardware] precisions``: IEEE and brain floats, TF32,
#: the 8-, 6- and 4-bit floats (FP8 E4M3/E5M2, OCP or AMD's FNUZ variant; FP6; FP4) and 8-bit integers.
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"]

#: ``[llm] dtype`` -> the precision it computes in (``auto``: the checkpoint's own, not checked).
DTYPE_PRECISION: dict[str, str] = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


class HardwareSpec(_Strict):
    """What hardware the profile expects. Compared against the detected machine at run start
    (``bench.environment.check_profile``); a run records the count and memory it found
    (``bench.environment.resolve_profile``)."""

    device: Device = Field(
        description="where the backends run: cpu; cuda (NVIDIA); rocm (AMD: PyTorch's ROCm build, on its cuda device, "
        "and vLLM's ROCm build; schema 3); mps (Apple Silicon's GPU through Metal, PyTorch's mps device; no vLLM, the "
        "LLMs run in the HF pipeline; schema 3)"
    )
    gpu_models: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="GPU models this profile accepts, each matched against the device name as NVML reports it by "
        "whole words (bench.config.gpu_model_matches): 'H100' accepts 'NVIDIA H100 80GB HBM3' and 'NVIDIA H100 NVL', "
        "'L4' accepts 'NVIDIA L4' but not 'NVIDIA L40S'. Schema 2; replaces gpu_model_pattern",
    )
    gpu_model_pattern: str | None = Field(
        default=None,
        description="Schema 1 (still read): a regular expression searched (case-insensitive) in the NVML device name. "
        "A plain word ('A100') is read as gpu_models = ['A100'] (whole words: 'L4' no longer accepts an L40S)",
    )
    gpu_count: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="GPUs of one node as the profile plans for them (suites, `bench slurm`); a host run uses, and "
        "records, the GPUs it finds (at least gpu_count_min)",
    )
    gpu_count_min: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="the fewest GPUs a machine of this profile may have; None: gpu_count"
    )
    gpu_memory_gb: Annotated[float, Field(ge=0)] = Field(
        default=0.0,
        description="memory per GPU [GB as the datasheet gives it, e.g. 80 for an H100 80GB], what models are placed "
        "by (bench.catalog.models.gpus_needed); a run records the size of the GPUs it found",
    )
    gpu_memory_variants_gb: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        description="other memory sizes of the family this profile accepts [GB, datasheet], e.g. [80] beside "
        "gpu_memory_gb = 94 for the H100's 80 GB PCIe/SXM and 94 GB NVL",
    )
    gpu_max_power_w: Annotated[float, Field(ge=0)] | None = None
    min_ram_gb: Annotated[float, Field(ge=0)] = 0.0
    cpu_tdp_w: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Rated CPU power for the estimate when RAPL is not readable; looked up if absent."
    )
    datasheet: DatasheetPeak | None = Field(
        default=None,
        description="GPU profiles: the datasheet's peak FLOP/s and power, cited, and its other form factors as "
        "variants chosen by the NVML name of the GPUs a run found (bench.arithmetic)",
    )
    precisions: list[Precision] = Field(
        default_factory=list,
        description="the number formats the GPU's matrix units compute in, as its datasheet lists them (e.g. ['fp64', "
        "'tf32', 'bf16', 'fp16', 'fp8', 'int8']); when given, quantization=fp8 needs 'fp8' here and [llm] dtype its "
        "16/32-bit format (checked when the profile loads), else the kit's table of GPU names decides "
        "(bench.run.models.FP8_GPUS; AMD_FP8_GPUS on rocm). Reference data: not hashed",
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_pattern_is_a_model(cls, data: Any) -> Any:
        """A schema-1 ``gpu_model_pattern`` that is plain words ("A100", "H100") is the model of that name."""
        if isinstance(data, dict) and data.get("gpu_model_pattern") and not data.get("gpu_models"):
            pattern = data["gpu_model_pattern"]
            if isinstance(pattern, str) and re.fullmatch(r"[A-Za-z0-9 ]+", pattern.strip()):
                data = {k: v for k, v in data.items() if k != "gpu_model_pattern"}
                data["gpu_models"] = [pattern.strip()]
        return data

    @field_validator("gpu_model_pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _cuda_needs_gpus(self) -> HardwareSpec:
        if self.device in GPU_DEVICES and (self.gpu_count < 1 or not (self.gpu_models or self.gpu_model_pattern)):
            example = "MI300X" if self.device == "rocm" else "H100"
            raise ValueError(
                f"device = {self.device!r} needs gpu_count >= 1 and gpu_models (e.g. gpu_models = [{example!r}])"
            )
        if self.device == "mps" and self.gpu_count > 1:
            raise ValueError("device = 'mps' is the one GPU of an Apple Silicon chip: gpu_count is 0 or 1")
        if self.gpu_models and self.gpu_model_pattern:
            raise ValueError("give gpu_models or gpu_model_pattern (schema 1), not both")
        if self.device == "cpu" and (self.gpu_count or self.gpu_models or self.gpu_count_min):
            raise ValueError("device = 'cpu' cannot ask for GPUs (gpu_count must be 0, no gpu_models)")
        if self.gpu_count_min is not None and self.gpu_count_min > self.gpu_count:
            raise ValueError(f"gpu_count_min = {self.gpu_count_min} is above gpu_count = {self.gpu_count}")
        if self.gpu_memory_variants_gb and not self.gpu_memory_gb:
            raise ValueError("gpu_memory_variants_gb needs gpu_memory_gb (the size the profile plans for)")
        return self

    @model_validator(mode="after")
    def _datasheet_within_the_board_maximum(self) -> HardwareSpec:
        """The datasheet's power (its default and each variant's) must not exceed ``gpu_max_power_w`` where both are
        given. Both describe the profile's own GPU models (a variant is another form factor of them, an NVL or PCIe
        card below the SXM module's maximum), and ``gpu_max_power_w`` is the board's maximum the profile cites (the
        bound of a suite's power_limit_w, and of the GPU power a run's validation accepts): a datasheet column above
        it means one of the two figures is wrong (a unit or digit slip, a column of another model), and either would
        make numbers wrong silently (x_datasheet; valid GPU readings flagged, or wrong ones passed). So it is refused,
        naming both; equal is fine (the default column is usually the board's maximum)."""
        sheet, max_w = self.datasheet, self.gpu_max_power_w
        if sheet is None or not max_w:
            return self
        columns = [("hardware.datasheet.power_w", "the datasheet's", sheet.power_w)]
        columns += [
            (f"hardware.datasheet.variants.{i}.power_w", f"variant {v.name!r}'s", v.power_w)
            for i, v in enumerate(sheet.variants)
        ]
        for where, whose, power_w in columns:
            if power_w > max_w:
                raise ValueError(
                    f"{where} = {power_w:g} W ({whose} power) is above the profile's own gpu_max_power_w = {max_w:g} "
                    "W, the board's maximum: a datasheet column of this profile's GPUs cannot draw more than the board "
                    "allows; correct whichever figure is wrong (both come from the datasheet; gpu_max_power_w is the "
                    "largest form factor's maximum, a lower power limit is set per suite with power_limit_w)"
                )
        return self

    @property
    def on_gpus(self) -> bool:
        """Whether the profile runs on discrete GPUs (``GPU_DEVICES``: cuda, rocm), counted, placed and metered by
        the device layer; an Apple GPU (mps) is part of its chip, metered with it (``bench.meters.soc``)."""
        return self.device in GPU_DEVICES

    @property
    def torch_device(self) -> str:
        """PyTorch's name for this profile's device (``torch_device``: rocm runs on PyTorch's ``cuda``)."""
        return torch_device(self.device)

    @property
    def min_gpus(self) -> int:
        """The fewest GPUs a machine of this profile may have (``gpu_count_min``, else ``gpu_count``)."""
        return self.gpu_count if self.gpu_count_min is None else self.gpu_count_min

    @property
    def memory_sizes_gb(self) -> tuple[float, ...]:
        """Every memory size [GB, datasheet] this profile accepts, smallest first (empty: any)."""
        sizes = {self.gpu_memory_gb, *self.gpu_memory_variants_gb} - {0.0}
        return tuple(sorted(sizes))

    def accepts_gpu(self, name: str) -> bool:
        """Whether a GPU NVML calls ``name`` is of this profile's model (``gpu_models`` by whole words, or the
        schema-1 ``gpu_model_pattern`` searched as a regular expression: ``accepts_gpu_name``)."""
        return accepts_gpu_name(self.gpu_models, self.gpu_model_pattern, name)

    def models_text(self) -> str:
        """The accepted models for a message: "H100" or "H100 | H100 NVL" (or /pattern/ for schema 1)."""
        return " | ".join(self.gpu_models) if self.gpu_models else f"/{self.gpu_model_pattern}/"

    @model_serializer(mode="wrap")
    def _new_fields_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """As ``MeasurementSpec``'s: the schema-2 fields are dumped only when set, and ``gpu_model_pattern`` only
        when a schema-1 profile has one, so a results file keeps the form its profile had."""
        return _without_later_defaults(handler(self), _LATER_HARDWARE_DEFAULTS)


#: HardwareSpec fields of schema 2 (and the schema-1 pattern), and ``datasheet`` (added after runs were stored), dumped
#: only when not their default.
_LATER_HARDWARE_DEFAULTS: dict[str, object] = {
    "datasheet": None,
    "gpu_models": [],
    "gpu_model_pattern": None,
    "gpu_count_min": None,
    "gpu_memory_variants_gb": [],
    "precisions": [],
}


class ContainerSpec(_Strict):
    """The image a profile runs in."""

    dockerfile: str
    image: str
    build_args: dict[str, str] = Field(default_factory=dict)


class MeasurementSpec(_Strict):
    """How windows are measured on this machine class."""

    min_window_s: Annotated[float, Field(gt=0, le=600)] = Field(
        description="A window shorter than this repeats the whole test-set inference until long enough, then divides."
    )
    idle_baseline_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    max_loops: Annotated[int, Field(ge=1)] = 100_000
    codecarbon: bool = True
    codecarbon_measure_power_s: Annotated[float, Field(gt=0)] = 15.0
    country_iso_code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "DEU"
    max_other_cpu_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.10,
        description="a window where processes outside the run used more than this share of the machine's CPU time "
        "is invalid (machine-scope energy counts them); windows under 1 s are not judged (bench.meters.others)",
    )
    pue: Annotated[float, Field(ge=1, le=5)] = Field(
        default=1.0, description="power usage effectiveness for the derived gCO2e and cost (1.0: the paper's)"
    )
    grid_intensity_gco2e_per_kwh: Annotated[float, Field(ge=0, le=2000)] | None = Field(
        default=None, description="the grid's carbon intensity; None: CodeCarbon's table for country_iso_code"
    )
    price_per_kwh: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="electricity price for the derived cost; None: no cost is shown"
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    calibration: bool = Field(
        default=True, description="run the reference workload once per session: the machine's index (bench.calibration)"
    )

    @model_serializer(mode="wrap")
    def _new_fields_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Fields added after runs were stored are dumped only when they differ from their default, so a profile
        that does not set them hashes as before (``bench.run.plan.settings_sha256``) and older runs still resume."""
        return _without_later_defaults(handler(self), _LATER_MEASUREMENT_DEFAULTS)


def _without_later_defaults(data: dict[str, object], later: dict[str, object]) -> dict[str, object]:
    """``data`` without the fields of ``later`` (added after runs were stored) that hold their default."""
    return {name: value for name, value in data.items() if name not in later or value != later[name]}


#: MeasurementSpec fields added in schema v3 of the results (others' CPU share, carbon and cost), with their defaults.
_LATER_MEASUREMENT_DEFAULTS: dict[str, object] = {
    "max_other_cpu_share": 0.10,
    "pue": 1.0,
    "grid_intensity_gco2e_per_kwh": None,
    "price_per_kwh": None,
    "currency": "EUR",
    "calibration": True,
}


#: ``[llm] max_batch_size`` when a profile does not set it, by device: what a GPU's memory holds for an 8B model's
#: short prompts (the serving suites' largest batch), and what two CPU cores finish in minutes.
DEFAULT_MAX_BATCH_SIZE: dict[str, int] = {"cuda": 256, "rocm": 256, "mps": 64, "cpu": 64}


class LlmSpec(_Strict):
    """How this profile serves the zero-shot LLMs."""

    backend: Literal["hf_pipeline", "vllm"] = "hf_pipeline"
    serving: Literal["sequential", "batched", "scoring"] = Field(
        default="batched",
        description="sequential: one request at a time (the paper); batched: batch_size prompts per call; scoring: "
        "label likelihood, no generation (not the paper's method)",
    )
    batch_size: Annotated[int, Field(ge=1)] = 16
    max_batch_size: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="the largest batch size (texts per engine call; vLLM: sequences scheduled together) this profile "
        "allows: a larger batch_size, in [llm], a suite entry or --batch-size, is refused before any model loads; "
        f"None: {DEFAULT_MAX_BATCH_SIZE['cuda']} on a cuda or rocm profile, {DEFAULT_MAX_BATCH_SIZE['cpu']} on a "
        "cpu or mps one (an Apple laptop's GPU shares its memory with everything else). "
        "A limit, not a setting of the numbers: left out of the settings hash (bench.run.plan.UNHASHED_LLM_KEYS)",
    )
    max_new_tokens: Annotated[int, Field(ge=1)] = 64
    reasoning_max_new_tokens: Annotated[int, Field(ge=1)] = Field(
        default=4096, description="generation budget of reasoning models (their <think> block comes first)"
    )
    constrained: bool = Field(default=False, description="constrain decoding to the label set (not the paper)")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    truncate: bool = Field(
        default=False,
        description="cut texts whose prompt exceeds the model's context window (recorded per text); "
        "off: such prompts stop the run before the grid",
    )

    @model_serializer(mode="wrap")
    def _new_fields_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """As ``MeasurementSpec``'s: fields added after runs were stored are dumped only when not their default."""
        return _without_later_defaults(handler(self), _LATER_LLM_DEFAULTS)


#: LlmSpec fields added after runs were stored, with their defaults (dumped only when set).
_LATER_LLM_DEFAULTS: dict[str, object] = {"truncate": False, "max_batch_size": None}


class SlurmSpec(_Strict):
    """How ``bench slurm`` asks a Slurm cluster for this machine class (one array task per model of a suite).

    GPUs per task come from the model (``gpus_needed`` or a ``model@NxG`` placement), never from here; what is here
    is what the cluster needs to hear besides: partition, account, CPUs, memory, wall time, and whether a model may
    span nodes (vLLM pipeline parallelism over a Ray cluster started inside the allocation, as the paper did).
    """

    partition: str | None = None
    account: str | None = None
    cpus_per_task: Annotated[int, Field(ge=1)] = 8
    mem_gb: Annotated[float, Field(gt=0)] = 32.0
    time: Annotated[str, Field(pattern=r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$")] = Field(
        default="08:00:00", description="wall time per array task, Slurm's [D-]HH:MM:SS"
    )
    max_nodes: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="> 1 lets a model that does not fit one node span nodes (pipeline parallel over Ray)"
    )
    apptainer_image: str | None = Field(
        default=None, description="the .sif the tasks run in (`make sif PROFILE=x`); --host runs them in a venv"
    )
    ray_port: Annotated[int, Field(ge=1024, le=65535)] = 6379
    extra_sbatch: list[str] = Field(default_factory=list, description="more #SBATCH lines, e.g. '--qos=normal'")

    @property
    def multi_node(self) -> bool:
        """Whether a model may span more than one node."""
        return self.max_nodes > 1


class SuiteSpec(_Strict):
    """A grid: datasets x models x repetitions."""

    description: str = ""
    datasets: Annotated[list[str], Field(min_length=1)]
    models: Annotated[list[str], Field(min_length=1)]
    repetitions: Annotated[int, Field(ge=1, le=1000)] = 10
    seed: int = 0
    n_train: Annotated[int, Field(ge=2)] | None = Field(default=None, description="Default: the dataset's own.")
    n_test: Annotated[int, Field(ge=1)] | None = None
    model_repetitions: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="fewer repetitions for slow models (e.g. an LLM on a CPU); the rest run all"
    )

    @model_validator(mode="after")
    def _repetitions_known(self) -> SuiteSpec:
        stray = sorted(set(self.model_repetitions) - set(self.models))
        if stray:
            raise ValueError(f"model_repetitions names models not in the suite: {stray}")
        too_many = {m: r for m, r in self.model_repetitions.items() if r > self.repetitions}
        if too_many:
            raise ValueError(f"model_repetitions above the suite's repetitions ({self.repetitions}): {too_many}")
        return self

    def repetitions_of(self, model: str) -> int:
        """How many repetitions ``model`` runs in this suite."""
        # capped: a --repetitions override may go below a per-model count
        return min(self.model_repetitions.get(model, self.repetitions), self.repetitions)


class DataFileSpec(_Strict):
    """A local data file run as a data set (``bench run --dataset [NAME=]PATH``), recorded whole in the results'
    settings so a resumed run reads the same file the same way (its bytes are pinned by ``file_sha256``)."""

    path: Annotated[str, Field(min_length=1, description="absolute path of the file")]
    text_column: Annotated[str, Field(min_length=1)] = "text"
    label_column: Annotated[str, Field(min_length=1)] = "label"
    label_names: dict[str, str] = Field(
        default_factory=dict, description="the file's label values -> names for the LLM prompt (ids like 0/1)"
    )
    language: Annotated[str, Field(min_length=1)] = Field(
        default="und", description="BCP 47 language of the texts (the LLM prompt's language); und: undetermined"
    )
    encoding: str | None = Field(default=None, description="text encoding when not UTF-8 (CSV / JSON only)")


class HardwareProfile(_Strict):
    """One machine class (a TOML file in hardware_profiles/)."""

    schema_version: Literal[1, 2, 3] = Field(
        default=PROFILE_SCHEMA_VERSION,
        description="3: devices rocm and mps; 2: gpu_models, gpu_count_min, gpu_memory_variants_gb; 1: "
        "gpu_model_pattern. A file of an earlier schema still reads, as that schema wrote it",
    )
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    description: str
    hardware: HardwareSpec
    container: ContainerSpec
    measurement: MeasurementSpec
    embedder: str = Field(description="Sentence-embedding model used by the *-embedding models (catalog name).")
    llm: LlmSpec = Field(default_factory=LlmSpec)
    training: dict[str, dict[str, int | float | str | bool]] = Field(
        default_factory=dict,
        description="Training settings of the fine-tuned models (setfit, finetune-head) by model name, overriding the "
        "backend's defaults, e.g. [training.setfit] num_iterations = 1 on a slow machine; recorded in each model's "
        "info. A key the backend does not take fails that model's load, naming the accepted keys.",
    )
    suites: dict[str, SuiteSpec]
    excluded_models: dict[str, str] = Field(
        default_factory=dict, description="Models that do not fit this profile, each with the reason."
    )
    slurm: SlurmSpec = Field(default_factory=SlurmSpec)

    @model_validator(mode="after")
    def _has_default_suite(self) -> HardwareProfile:
        if "default" not in self.suites:
            raise ValueError("a profile needs a [suites.default] table")
        for suite_name, suite in self.suites.items():
            try:  # `llama-3.1-70b@2x1` is llama-3.1-70b: an excluded model stays excluded in any placement
                bases = {base_model_name(m) for m in suite.models}
            except ConfigError as exc:
                raise ValueError(f"suite {suite_name!r}: {exc}") from None  # pydantic names the file and field
            clash = sorted(bases & set(self.excluded_models))
            if clash:
                raise ValueError(f"suite {suite_name!r} lists excluded models {clash}")
        return self

    @model_validator(mode="after")
    def _device_of_its_schema(self) -> HardwareProfile:
        """A device newer than the profile's ``schema_version`` is refused (``DEVICE_SINCE_SCHEMA``), and so is vLLM on
        Apple's GPU: vLLM has no Metal build, the HF pipeline runs the LLMs on mps."""
        device, since = self.hardware.device, DEVICE_SINCE_SCHEMA[self.hardware.device]
        if self.schema_version < since:
            raise ValueError(
                f"device = {device!r} is a schema-{since} device: set schema_version = {PROFILE_SCHEMA_VERSION} "
                f"(this profile says {self.schema_version})"
            )
        if device == "mps" and self.llm.backend == "vllm":
            raise ValueError(
                "[llm] backend = 'vllm' cannot run on device = 'mps': vLLM has no build for Apple's GPU (Metal). "
                "Use backend = 'hf_pipeline', which runs the LLMs on mps"
            )
        return self

    @model_validator(mode="after")
    def _batch_size_within_limit(self) -> HardwareProfile:
        if self.llm.batch_size > self.max_batch_size:
            raise ValueError(
                f"[llm] batch_size = {self.llm.batch_size} is above the profile's limit [llm] max_batch_size = "
                f"{self.max_batch_size}; lower batch_size or raise max_batch_size"
            )
        return self

    @model_validator(mode="after")
    def _device_settings_fit_the_board(self) -> HardwareProfile:
        """A suite's ``power_limit_w`` / ``gpu_clock_mhz`` (``bench.run.power``) need a GPU profile, and a power
        limit must not exceed the board's maximum the profile cites (``gpu_max_power_w``). The minimum a board allows
        is not in datasheets (nvidia-smi -q "Min Power Limit"): the run checks it on the GPU before any energy."""
        from bench.catalog.models import split_serving

        for suite_name, suite in self.suites.items():
            for model in suite.models:
                config = split_serving(model)[1]
                keys = [k for k in ("power_limit_w", "gpu_clock_mhz") if k in config]
                if keys and self.hardware.device != "cuda":
                    raise ValueError(
                        f"suite {suite_name!r}: {model} sets {keys[0]}, which needs device = 'cuda' (the kit sets "
                        "power limits and clocks through NVML only)"
                    )
                limit_w, max_w = config.get("power_limit_w"), self.hardware.gpu_max_power_w
                if limit_w is not None and max_w is not None and limit_w > max_w:
                    raise ValueError(
                        f"suite {suite_name!r}: {model} asks for power_limit_w={limit_w}, above the board's maximum "
                        f"gpu_max_power_w = {max_w:g} W"
                    )
        return self

    @model_validator(mode="after")
    def _precisions_cover_the_serving(self) -> HardwareProfile:
        """Where ``[hardware] precisions`` lists the GPU's formats: the ``[llm]`` dtype and each suite entry's
        ``dtype`` must be among them, and ``quantization=fp8`` needs ``fp8`` (an MI250X or an A100 has no FP8 units).
        Not listed: nothing is checked here (the run checks FP8 by GPU name, ``bench.run.models.has_fp8``)."""
        from bench.catalog.models import split_serving

        listed = set(self.hardware.precisions)
        if not listed:
            return self
        wanted = [("[llm] dtype", self.llm.dtype)]
        for suite_name, suite in self.suites.items():
            for model in suite.models:
                config = split_serving(model)[1]
                where = f"suite {suite_name!r}: {model}"
                wanted.append((where, str(config.get("dtype", "auto"))))
                if config.get("quantization") == "fp8":
                    wanted.append((where, "fp8"))
        for where, value in wanted:
            precision = DTYPE_PRECISION.get(value, value if value == "fp8" else None)
            if precision is not None and precision not in listed:
                raise ValueError(
                    f"{where} computes in {precision}, which [hardware] precisions does not list "
                    f"({', '.join(self.hardware.precisions)}): the GPU has no {precision} units"
                )
        return self

    @property
    def max_batch_size(self) -> int:
        """The largest LLM batch size this profile allows: ``[llm] max_batch_size``, else the device's default
        (``DEFAULT_MAX_BATCH_SIZE``: 256 on a GPU profile, 64 on a CPU one)."""
        return self.llm.max_batch_size or DEFAULT_MAX_BATCH_SIZE[self.hardware.device]

    def suite(self, name: str) -> SuiteSpec:
        """Return the suite called ``name`` or raise ConfigError listing the known ones."""
        try:
            return self.suites[name]
        except KeyError:
            known = sorted(self.suites)
            raise ConfigError(
                f"profile {self.name!r} has no suite {name!r}.{did_you_mean(name, known)} "
                f"Known suites: {', '.join(known)}"
            ) from None


def profiles_dir() -> Path:
    """The folder profiles are read from ($BENCH_PROFILES_DIR overrides the checkout's hardware_profiles/)."""
    return Path(os.environ.get("BENCH_PROFILES_DIR", DEFAULT_PROFILES_DIR))


def list_profiles(directory: Path | None = None) -> list[str]:
    """Names of the profiles in ``directory`` (sorted)."""
    folder = directory or profiles_dir()
    return sorted(p.stem for p in folder.glob("*.toml"))


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid hardware profile ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {where}: unknown key (typo?); remove it or fix its name")
        elif err["type"] == "missing":
            lines.append(f"  - {where}: required key is missing")
        else:
            got = err.get("input")
            got_text = f" (got {got!r})" if not isinstance(got, dict | list) else ""
            lines.append(f"  - {where}: {err['msg']}{got_text}")
    return "\n".join(lines)


def load_profile_file(path: Path) -> HardwareProfile:
    """Parse and validate one profile file; ConfigError names the file, the field and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: profile file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        profile = HardwareProfile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from None
    if profile.name != path.stem:
        raise ConfigError(f"{path}: name = {profile.name!r} must match the file name ({path.stem!r})")
    return profile


def load_profile(name_or_path: str, directory: Path | None = None) -> HardwareProfile:
    """Load a profile by name (from the profiles folder) or by path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        return load_profile_file(candidate)
    folder = directory or profiles_dir()
    path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        known = list_profiles(folder)
        raise ConfigError(
            f"unknown hardware profile {name_or_path!r}.{did_you_mean(name_or_path, known)} "
            f"Known profiles ({folder}): {', '.join(known) or 'none'}"
        )
    return load_profile_file(path)
