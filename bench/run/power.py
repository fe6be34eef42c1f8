"""The GPU power limit and locked clocks as measured choices (issue 26): a model's serving keys ``power_limit_w`` and
``gpu_clock_mhz`` (``bench.catalog.models.DEVICE_SERVING_KEYS``), set on every GPU a cell uses before its window and
restored after it.

- Before any energy is spent (``preflight``, at the session's start, before the idle baseline): every value the
  suite asks for must lie in what each GPU allows (the power limit between NVML's min and max constraints; a clock
  among the board's supported graphics clocks), and this process must be allowed to set them (root, or the Zeus
  daemon); otherwise the run is refused, saying what to do.
- Around a cell (``applied``): the power management limit in force is read, the change journaled, the value set
  through the device layer (Zeus's setters); after the cell (also on an error, Ctrl-C or SIGTERM: the restore runs in
  ``finally`` with both signals held until it is done) the limit goes back to the value read before the cell, not
  the board's default, so an operator's fleet-wide cap stays. Locked clocks are reset (NVML has no call that reads a
  lock in force, so one set by someone else before the cell cannot be put back: the run says so once).
- The journal (``journal_dir()``: ``$BENCH_STATE_DIR``, else ``$XDG_STATE_HOME/bench``, else
  ``~/.local/state/bench``, then ``gpu-settings/<GPU UUID>.json``) holds what the kit changed on a GPU until it has
  restored it. A session killed in between (SIGKILL, power loss, a node reboot that kept the GPU's setting) leaves its
  file; the next session that opens that GPU (``recover``) restores the value read before, if the GPU still holds
  what the kit set, and warns; where the GPU holds anything else, someone set it since on purpose, and the file is
  dropped without a word. Where it cannot restore (no permission now), it warns with the command an admin runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.fsutil import atomic_write_bytes, now_iso
from bench.validation import POWER_LIMIT_TOLERANCE_W as SAME_LIMIT_W

#: The environment variable naming the folder of the kit's per-host state (the journal lives under it).
STATE_DIR_ENV = "BENCH_STATE_DIR"
#: Said once per run that locks clocks.
CLOCK_RESET_NOTE = (
    "gpu_clock_mhz: after each cell the graphics clock lock is reset (nvmlDeviceResetGpuLockedClocks, nvidia-smi "
    "-rgc): NVML has no call that reads a lock in force, so a lock set before the run is not put back"
)


def requested(spec_or_params: Any) -> dict[str, int]:
    """The device settings a model asks for (``power_limit_w``, ``gpu_clock_mhz``), from its spec or params."""
    from bench.catalog.models import DEVICE_SERVING_KEYS

    params = getattr(spec_or_params, "params", spec_or_params) or {}
    return {key: int(params[key]) for key in DEVICE_SERVING_KEYS if key in params}


def journal_dir() -> Path:
    """Where the journal of changed GPU settings lives on this host (see the module docstring)."""
    base = os.environ.get(STATE_DIR_ENV) or os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base else Path.home() / ".local" / "state"
    if not os.environ.get(STATE_DIR_ENV):
        root = root / "bench"
    return root / "gpu-settings"


def _gpu_key(device: Any) -> str:
    facts = device.facts
    return str(facts.uuid or f"{socket.gethostname()}-index-{facts.index}")


def _admin_command(index: int, key: str, value: float | None) -> str:
    if key == "power_limit_w":
        return f"sudo nvidia-smi -i {index} -pl {value:g}"
    return f"sudo nvidia-smi -i {index} -rgc"


# --- preflight ----------------------------------------------------------------------------------------------------


def _what_to_do(label: str, index: int, key: str, value: int) -> str:
    admin = f"sudo nvidia-smi -i {index} -pl {value}" if key == "power_limit_w" else f"sudo nvidia-smi -i {index} -lgc "
    admin += "" if key == "power_limit_w" else f"{value},{value}"
    return (
        f"{label}: this process may not set {key}={value} (setting the power limit or locking clocks needs root). "
        "Either run the kit as root (or in a container with --cap-add SYS_ADMIN); or have an admin set it "
        f"({admin}) and run the model without the {key} key (the limit in force is recorded with every cell); or run "
        "the Zeus daemon (zeusd, https://ml.energy/zeus/getting_started/#system-privileges) and point ZEUSD_SOCK_PATH "
        "(or ZEUSD_HOST_PORT) at it. Refused before any energy was spent"
    )


def _check_range(device: Any, model: str, key: str, value: int) -> None:
    """ConfigError naming the device, the value and the range it allows, when ``value`` lies outside it."""
    label = device.facts.label
    if key == "power_limit_w":
        low, high = device.power_limit_constraints_w()
        if not low - SAME_LIMIT_W < value < high + SAME_LIMIT_W:
            raise ConfigError(
                f"model {model!r}: power_limit_w={value} is outside what {label} allows: {low:g} to {high:g} W "
                "(NVML power limit constraints; nvidia-smi -q shows them as Min/Max Power Limit). Choose a limit in "
                "that range"
            )
        return
    clocks = device.supported_graphics_clocks_mhz()
    if not clocks or not clocks[0] <= value <= clocks[-1]:
        shown = f"{clocks[0]} to {clocks[-1]} MHz" if clocks else "none listed"
        raise ConfigError(
            f"model {model!r}: gpu_clock_mhz={value} is outside the graphics clocks {label} supports: {shown} "
            "(NVML supported graphics clocks at the highest memory clock; nvidia-smi -q -d SUPPORTED_CLOCKS). Choose "
            "a clock in that range"
        )


def preflight(models: dict[str, Any], devices: list[Any], *, device_kind: str, nodes: int = 1) -> list[str]:
    """Before any energy is spent: every device setting the run's ``models`` (name -> spec) ask for, checked on every
    GPU the session opened (``devices``): in range, and settable by this process. Returns notes for the results
    (the clock-lock note where clocks are locked). Raises ConfigError naming the model, the device, the value and the
    allowed range or what to do."""
    from bench.devices import DeviceError

    wanted = {name: requested(spec) for name, spec in models.items()}
    wanted = {name: settings for name, settings in wanted.items() if settings}
    if not wanted:
        return []
    name, settings = next(iter(wanted.items()))
    key = next(iter(settings))
    if device_kind == "rocm":
        raise ConfigError(
            f"model {name!r}: {key}={settings[key]} is set through NVML, on NVIDIA GPUs; this profile runs on AMD GPUs "
            f"(device 'rocm'), whose power limits and clocks the kit does not set. Drop [{key}=...] from the model"
        )
    if device_kind != "cuda":
        raise ConfigError(
            f"model {name!r}: {key}={settings[key]} sets a GPU; this profile runs on {device_kind!r}, without GPUs. "
            f"Drop [{key}=...] from the model, or run on a GPU machine with a GPU profile (--profile auto there)"
        )
    if nodes > 1:
        raise ConfigError(f"model {name!r}: {key} is set on this node's GPUs only; run it on one node (--nodes 1)")
    if not devices:
        raise ConfigError(f"model {name!r}: {key} sets a GPU, but the GPU meter opened none (see `bench env`)")
    for name, settings in wanted.items():
        for key, value in settings.items():
            for device in devices:
                _check_range(device, name, key, value)
    for device in devices:
        try:
            device.probe_control()
        except DeviceError as exc:
            if exc.kind != "permission":
                raise
            name, settings = next(iter(wanted.items()))
            key, value = next(iter(settings.items()))
            raise ConfigError(f"{_what_to_do(device.facts.label, device.facts.index, key, value)} ({exc})") from None
    return [CLOCK_RESET_NOTE] if any("gpu_clock_mhz" in s for s in wanted.values()) else []


# --- the journal --------------------------------------------------------------------------------------------------


@dataclass
class Journal:
    """What the kit changed on each GPU and has not restored yet: one JSON file per GPU under ``folder``."""

    folder: Path = field(default_factory=journal_dir)
    run_id: str | None = None

    def path(self, device: Any) -> Path:
        return self.folder / f"{_gpu_key(device)}.json"

    def write(self, device: Any, changes: list[dict[str, Any]]) -> None:
        """Record ``changes`` (``key``, ``before``, ``set``) on ``device`` before they are made (atomic)."""
        facts = device.facts
        entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run_id": self.run_id,
            "written_at": now_iso(),
            "gpu": {"index": facts.index, "uuid": facts.uuid, "name": facts.name},
            "changes": changes,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path(device), json.dumps(entry, indent=1).encode())

    def read(self, device: Any) -> dict[str, Any] | None:
        path = self.path(device)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return {"unreadable": f"{type(exc).__name__}: {exc}"}

    def clear(self, device: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(device).unlink()


def _alive(entry: dict[str, Any]) -> bool:
    """Whether the session that wrote ``entry`` is still running on this host (and is not this process)."""
    pid = entry.get("pid")
    if entry.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(devices: list[Any], journal: Journal) -> list[str]:
    """At a session's start: what an earlier session changed on these GPUs and never restored, undone where the GPU
    still holds it. Returns warnings (a change undone, or one that could not be, with the command an admin runs); a
    setting someone changed since is theirs and is neither touched nor warned about. Never raises for a GPU."""
    from bench.devices import DeviceError

    warnings: list[str] = []
    for device in devices:
        entry = journal.read(device)
        if entry is None:
            continue
        label = device.facts.label
        if "unreadable" in entry:
            warnings.append(f"{label}: the kit's journal {journal.path(device)} is unreadable ({entry['unreadable']})")
            continue
        if _alive(entry):
            warnings.append(
                f"{label}: session pid {entry['pid']} (run {entry.get('run_id')}) is still running and has changed "
                f"this GPU's settings ({', '.join(c['key'] for c in entry.get('changes', []))}); left alone"
            )
            continue
        who = f"a session (pid {entry.get('pid')}, run {entry.get('run_id')}, {entry.get('written_at')}) that ended"
        kept: list[dict[str, Any]] = []
        for change in entry.get("changes", []):
            try:
                note = _undo(device, change, who)
            except DeviceError as exc:
                kept.append(change)
                command = _admin_command(device.facts.index, change["key"], change.get("before"))
                note = (
                    f"{label}: {who} before restoring it left {change['key']} at {change.get('set')}; the kit could "
                    f"not undo it ({exc}). Have an admin run: {command}"
                )
            if note:
                warnings.append(note)
        if kept:
            journal.write(device, kept)
        else:
            journal.clear(device)
    return warnings


def _undo(device: Any, change: dict[str, Any], who: str) -> str | None:
    """Undo one journaled change where the GPU still holds it; the warning, or None where nothing was ours."""
    label, key = device.facts.label, change["key"]
    if key == "power_limit_w":
        now = device.power_management_limit_w()
        if abs(now - float(change["set"])) > SAME_LIMIT_W or change.get("before") is None:
            return None  # set since by someone else, or never changed: theirs, not the kit's
        device.set_power_limit_w(float(change["before"]))
        return (
            f"{label}: {who} before restoring it left the power limit at {change['set']:g} W; restored to the "
            f"{change['before']:g} W it read before"
        )
    device.reset_gpu_locked_clocks()
    return (
        f"{label}: {who} before restoring it left the graphics clock locked at {change['set']} MHz; the lock was "
        "reset (NVML cannot read a lock, so one set since by someone else was removed too)"
    )


# --- around a cell ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held while the block runs (a restore must not be cut in half), then acted on as Ctrl-C.
    Outside the main thread (no handlers can be set there) the block just runs."""
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    try:
        previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            raise KeyboardInterrupt


@dataclass
class Applied:
    """What ``applied`` did around one cell: per GPU, each setting with the value read before and the one set; and
    what could not be restored (with the admin command), empty when all was."""

    gpus: list[dict[str, Any]] = field(default_factory=list)
    restore_errors: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The JSON form stored in the cell (``energy.gpu.detail.device_settings``)."""
        out: dict[str, Any] = {"gpus": self.gpus, "restored": not self.restore_errors}
        if self.restore_errors:
            out["restore_errors"] = list(self.restore_errors)
        return out


@contextlib.contextmanager
def applied(devices: list[Any], settings: dict[str, int], journal: Journal) -> Iterator[Applied]:
    """The device ``settings`` (``power_limit_w``, ``gpu_clock_mhz``) set on every GPU in ``devices`` for the
    block, journaled, and restored after it however it ends (the power limit to the value read before, the clock lock
    reset). A restore that fails is kept in the journal and in ``Applied.restore_errors`` (the caller warns); a set
    that fails raises DeviceError after what was set is restored."""
    done = Applied()
    if not settings:
        yield done
        return
    changed: list[tuple[Any, dict[str, Any]]] = []
    try:
        for device in devices:
            record: dict[str, Any] = {"index": device.facts.index, "uuid": device.facts.uuid}
            changes = []
            if "power_limit_w" in settings:
                before = device.power_management_limit_w()
                record["power_limit_w_before"] = before
                changes.append({"key": "power_limit_w", "before": before, "set": settings["power_limit_w"]})
            if "gpu_clock_mhz" in settings:
                changes.append({"key": "gpu_clock_mhz", "before": None, "set": settings["gpu_clock_mhz"]})
            journal.write(device, changes)  # before the change: a kill between the two leaves nothing unrecorded
            changed.append((device, record))
            if "power_limit_w" in settings:
                device.set_power_limit_w(float(settings["power_limit_w"]))
                record["power_limit_w"] = device.power_management_limit_w()
            if "gpu_clock_mhz" in settings:
                device.lock_gpu_clocks_mhz(settings["gpu_clock_mhz"], settings["gpu_clock_mhz"])
                record["gpu_clock_mhz"] = settings["gpu_clock_mhz"]
            done.gpus.append(record)
        yield done
    finally:
        with signals_held():
            for device, record in reversed(changed):
                _restore(device, record, settings, journal, done)


def _restore(device: Any, record: dict[str, Any], settings: dict[str, int], journal: Journal, done: Applied) -> None:
    """Put one GPU back: the power limit to the value read before, the clock lock reset; the journal entry dropped
    once both are done."""
    from bench.devices import DeviceError

    label, index, failed = device.facts.label, device.facts.index, False
    if "power_limit_w" in settings and record.get("power_limit_w_before") is not None:
        before = record["power_limit_w_before"]
        try:
            device.set_power_limit_w(before)
            record["power_limit_w_restored"] = device.power_management_limit_w()
        except DeviceError as exc:
            failed = True
            done.restore_errors.append(
                f"{label}: the power limit could not be put back to {before:g} W ({exc}); have an admin run: "
                f"{_admin_command(index, 'power_limit_w', before)}"
            )
    if "gpu_clock_mhz" in settings:
        try:
            device.reset_gpu_locked_clocks()
            record["gpu_clock_reset"] = True
        except DeviceError as exc:
            failed = True
            done.restore_errors.append(
                f"{label}: the graphics clock lock could not be reset ({exc}); have an admin run: "
                f"{_admin_command(index, 'gpu_clock_mhz', None)}"
            )
    if not failed:
        journal.clear(device)


# --- the session's side -------------------------------------------------------------------------------------------


def meter_devices(meter_set: Any) -> list[Any]:
    """The open GPUs (``bench.devices.base.Accelerator``) whose energy ``meter_set`` reads; empty without a GPU
    meter (a CPU profile, no NVML) or a multi-node set (which has no ``owner``)."""
    owner = meter_set.owner("gpu") if hasattr(meter_set, "owner") else None
    return list(getattr(owner, "devices", None) or [])


def session_start(plan: Any, meter_set: Any, journal: Journal) -> list[str]:
    """At a session's start, before the run folder is used and before any energy is spent: the changes a killed
    session left on these GPUs undone (``recover``), then every device setting of the suite checked (``preflight``).
    Returns warnings and notes for the results. Raises ConfigError (out of range, no permission)."""
    devices = meter_devices(meter_set)
    warnings = recover(devices, journal)
    notes = preflight(dict(plan.models), devices, device_kind=plan.profile.hardware.device, nodes=plan.request.nodes)
    return [*warnings, *notes]


def around_cell(cell_run: Any, model: str, spec: Any, meter_set: Any, journal: Journal) -> tuple[Any, list[str]]:
    """``cell_run()`` (which returns a ``Cell``) with ``spec``'s device settings applied on the GPUs of ``meter_set``
    (``applied``); the cell gets what was set and restored in ``energy.gpu.detail.device_settings``. Returns the cell
    and warnings (a restore that failed). A model without device settings runs as is."""
    settings = requested(spec)
    if not settings:
        return cell_run(), []
    with applied(meter_devices(meter_set), settings, journal) as done:
        cell = cell_run()
    gpu = cell.energy.get("gpu") if getattr(cell, "energy", None) else None
    if gpu is not None:
        gpu.detail["device_settings"] = {"requested": settings, **done.record()}
    return cell, [f"cell {cell.dataset}/{model}/rep{cell.repetition}: {e}" for e in done.restore_errors]
