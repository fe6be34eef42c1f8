"""``bench env``'s default output: what the kit finds on this machine, in a few aligned lines a person reads at once.

The summary is drawn from the document ``bench env --json`` prints (built once by ``bench.cli.cmd_env``), never
from a probe of its own, so the two cannot disagree. Reasons are wrapped to the terminal, never cut: their last part
is usually what to do about them (install a library, start the container with GPU access, set a profile key).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

#: ``field(label, text)``: the lines of one labelled field, wrapped to the summary's width (``flush=True``: a heading,
#: from the first column).
Field = Callable[..., list[str]]

#: Width of the label column (``machine``, ``nvidia GPUs``, ``  cpu``, ...), the text starting one space after it.
LABEL_W = 12
#: The terminal widths the summary wraps to: its own, within these bounds (not a terminal: ``DEFAULT_WIDTH``). The
#: floor is the label column (13) and 27 characters of text: a narrower terminal (a phone's, a split pane) still gets
#: lines it does not re-wrap, down to 40; below that the text column would hold a word or two, and such a terminal
#: re-wraps lines of 40 (the hanging indent then breaks, the words stay whole).
MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 40, 120, 100


def terminal_width() -> int:
    """Characters per line to wrap to: the terminal's (``$COLUMNS`` or the tty), at least 40 and at most 120."""
    columns = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(MAX_WIDTH, columns))


def _field(label: str, text: str | list[str], width: int) -> list[str]:
    """``label`` padded to the label column, then ``text`` wrapped under itself (words and paths never split); a
    list: one paragraph each, the later ones starting on lines of their own under the first."""
    hanging = " " * (LABEL_W + 1)
    lead = f"{label:<{LABEL_W}} " if len(label) <= LABEL_W else f"{label} "
    lines: list[str] = []
    for paragraph in [text] if isinstance(text, str) else text:
        lines += textwrap.wrap(
            paragraph,
            width=width,
            initial_indent=lead,
            subsequent_indent=hanging,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [lead.rstrip()]
        lead = hanging
    return lines


def _machine_line(machine: Mapping[str, Any]) -> str:
    """The host, its CPU, RAM and GPUs (grouped by name, with their memory), OS and Python in one sentence."""
    gpus: dict[str, int] = {}
    for gpu in machine.get("gpus") or []:
        key = f"{gpu.get('name')} ({gpu.get('memory_gb', 0):g} GB)"
        gpus[key] = gpus.get(key, 0) + 1
    gpu_text = ", ".join(f"{n} x {name}" for name, n in gpus.items()) if gpus else "no usable GPU"
    return (
        f"{machine.get('hostname')}: {machine.get('cpu_model')}, {machine.get('logical_cpus')} logical CPUs, "
        f"{machine.get('ram_gb', 0):g} GB RAM; {gpu_text}; {machine.get('os')}, Python {machine.get('python')}"
    )


def _profile_lines(info: Mapping[str, Any], how: str | None, matching: str | None, field: Field) -> list[str]:
    """The profile used and whether this machine matches it: how ``auto`` chose it, or each mismatch with its fix
    and what ``--profile auto`` would choose instead; then the device as PyTorch sees it (GPU profiles)."""
    name, problems = info.get("profile"), list(info.get("profile_mismatch") or [])
    if problems:
        text = f"{name}: does NOT match this machine ({len(problems)} problem(s))"
    else:
        text = f"{name}, chosen by --profile auto: {how}" if how else f"{name}: matches this machine"
    lines = field("profile", text)
    for problem in problems:
        lines += field("  mismatch", problem)
    if problems and matching:
        lines += field("  instead", f"--profile auto: {matching}")
    accelerator = info.get("accelerator") or {}
    device = accelerator.get("device", "cpu")
    if device != "cpu":
        torch = accelerator.get("torch")
        if torch is None:
            seen = "PyTorch is not installed"
        elif device == "mps":
            seen = f"PyTorch {torch}, Apple's mps available: {_yes(accelerator.get('mps_available'))}"
        else:
            build = "ROCm" if accelerator.get("torch_hip") else "CUDA" if accelerator.get("torch_cuda") else "CPU-only"
            seen = f"PyTorch {torch} ({build} build), GPU available: {_yes(accelerator.get('cuda_available'))}"
        torch_device = accelerator.get("torch_device")
        named = f" (PyTorch's {torch_device})" if torch_device and torch_device != device else ""
        lines += field("  device", f"{device}{named}; {seen}")
    return lines


def _yes(value: object) -> str:
    return "yes" if value is True else "no" if value in (False, None) else str(value)


def _component_text(component: str, entry: Mapping[str, Any], notes: Mapping[str, Any]) -> list[str]:
    """``method: what it rests on``, then why not better and how to make it so; or ``unavailable: why``."""
    method, detail = entry.get("method"), entry.get("detail") or {}
    if method == "unavailable" or entry.get("meter") is None:
        return [f"unavailable: {entry.get('reason')}"]
    meter = entry.get("meter")
    if meter == "cpu-estimate":
        text = [
            f"{method}: {detail.get('tdp_w', 0):g} W TDP x the busy share of {detail.get('logical_cpus')} logical CPUs"
        ]
        text += [str(notes["cpu"])] if notes.get("cpu") else []
        if detail.get("tdp_source") == "default":
            text.append(
                "the TDP is the kit's default per logical CPU (this CPU model is not in CodeCarbon's CPU table): "
                "set [hardware] cpu_tdp_w in the profile to the CPU's rated power (W)"
            )
        else:
            text[0] += f" (TDP from {detail.get('tdp_source')})"
        return text
    if meter == "ram-estimate":
        gb, w_per_gb, power_w = detail.get("total_gb", 0), detail.get("w_per_gb", 0), detail.get("power_w", 0)
        basis = f"{gb:.1f} GB x {w_per_gb:g} W/GB = {power_w:.1f} W"
        return [f"{method}: {basis}", *([str(notes["ram"])] if notes.get("ram") else [])]
    if component == "gpu" and "gpus" in detail:
        names: dict[str, int] = {}
        for gpu in detail["gpus"]:
            names[str(gpu.get("name"))] = names.get(str(gpu.get("name")), 0) + 1
        text = [f"{method}: " + ", ".join(f"{n} x {name}" for name, n in names.items())]
        scope = detail.get("scope")
        if scope == "module":
            text[0] += ", module scope (the Grace CPU and memory are counted here)"
        elif scope and scope != "gpu":
            text[0] += f", {scope} scope"
        if detail.get("skipped_gpus"):
            text.append(f"not metered: {notes.get('gpu_skipped') or detail['skipped_gpus']}")
        return text
    if meter == "rapl":
        return [f"{method}: {notes.get('rapl', 'RAPL')}"]
    if meter == "soc":  # Apple Silicon, Jetson: the chip's own counters behind this component
        fields = (detail.get("components") or {}).get(component) or []
        return [f"{method}: {', '.join(map(str, fields)) or 'no counter'} ({detail.get('soc')})"]
    return [f"{method} (meter {meter})"]


def _meter_lines(meters: Mapping[str, Any], field: Field) -> list[str]:
    """Each component's method label or why it is unavailable, then the side meters (CodeCarbon) and their state."""
    lines = field("", "energy per component (method label, or why unavailable)", flush=True)
    if "refused" in meters:  # a GPU in MIG mode, an Apple GPU nothing meters: refused before any energy is spent
        return lines + field(
            "  refused", f"a run on this profile is refused (as `bench run` would): {meters['refused']}"
        )
    notes = meters.get("notes") or {}
    for component, entry in (meters.get("components") or {}).items():
        lines += field(f"  {component}", _component_text(component, entry, notes))
    side = meters.get("side") or {}
    if not side:
        lines += field("  side", "none (the profile's [measurement] codecarbon is false)")
    for name, entry in side.items():
        if not entry.get("enabled"):
            lines += field(f"  {name}", f"side meter off: {entry.get('reason')}")
            continue
        detail = entry.get("detail") or {}
        what = ", ".join(entry.get("components") or [])
        if name == "codecarbon":
            text = (
                f"side meter ({detail.get('version')}), beside the kit's own: {detail.get('tracking_mode')} scope "
                f"({what}), read every {detail.get('measure_power_secs', 0):g} s"
            )
        else:
            text = f"side meter ({what})"
        lines += field(f"  {name}", text)
    return lines


def render_summary(
    info: Mapping[str, Any],
    *,
    fits_lines: list[str],
    how: str | None = None,
    matching: str | None = None,
    width: int | None = None,
) -> str:
    """The summary of ``info`` (the ``bench env --json`` document) as text lines, wrapped at ``width`` characters
    (None: ``terminal_width()``). ``fits_lines``: ``bench.catalog.placement.fits_summary`` of the paper's LLMs on the
    profile; ``how``: how ``--profile auto`` chose it (None: given by name); ``matching``: what ``--profile auto``
    would choose here, shown when the profile used does not match.

    A long reason is said once, in full, where it first belongs (a vendor's line, the GPUs' refusal); a later line
    that repeats it (a mismatch, the GPU meter's reason) points there instead."""
    width = width or terminal_width()
    said: dict[str, str] = {}  # long reason -> the label of the line that said it in full

    def field(label: str, text: str | list[str], *, cite: bool = True, flush: bool = False) -> list[str]:
        paragraphs = [text] if isinstance(text, str) else text
        if flush:  # a heading: from the first column, wrapped there too
            return [line for p in paragraphs for line in textwrap.wrap(p, width=width, break_long_words=False)]
        return _field(label, [_cited(t, said) if cite else t for t in paragraphs], width)

    def source(label: str, prefix: str, reason: str) -> list[str]:
        """A reason said in full, for later lines to point at."""
        if len(reason) > SAID_ONCE_CHARS:
            said.setdefault(reason, label.strip())
        return field(label, prefix + reason, cite=False)

    machine = info.get("machine") or {}
    lines = [*field("", "bench env: what the kit sees here (every detail: bench env --json)", flush=True), ""]
    lines += field("machine", _machine_line(machine))
    devices = info.get("devices") or {}
    for vendor, probe in devices.items():  # library missing, no device, no permission; found: MIG, GCD pairs
        lines += source(f"{vendor} GPUs", "found: " if probe.get("ok") else "not usable: ", str(probe.get("why")))
    if not machine.get("gpus") and any(probe.get("ok") for probe in devices.values()):
        # a vendor's library sees GPUs, yet none is usable here: why (MIG mode, CUDA_VISIBLE_DEVICES), with the fix
        lines += source("  no GPU", "", _cited(str(machine.get("nvml_status")), said))
    lines += _profile_lines(info, how, matching, field)
    lines.append("")
    lines += _meter_lines(info.get("meters") or {}, field)
    lines.append("")
    label = "paper LLMs"
    for line in fits_lines:
        lines += field(label, line)
        label = ""
    return "\n".join(lines) + "\n"


#: Reasons longer than this (characters) are said once in full and pointed at after.
SAID_ONCE_CHARS = 40


def _cited(text: str, said: Mapping[str, str]) -> str:
    """``text`` with each long reason said in full above replaced by a pointer to the line that said it."""
    for reason, label in said.items():
        text = text.replace(reason, f"see '{label}' above")
    return text
