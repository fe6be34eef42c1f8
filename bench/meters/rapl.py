"""CPU (and DRAM) energy from the Linux powercap RAPL counters.

Layout read (``/sys/class/powercap`` by default; the same layout on Intel and, on recent kernels, AMD)::

    intel-rapl:0/          name = package-0   -> cpu
    intel-rapl:0:0/        name = core        -> ignored (inside the package: no double counting)
    intel-rapl:0:1/        name = uncore      -> ignored (inside the package)
    intel-rapl:0:2/        name = dram        -> ram  (on Intel servers DRAM is outside the package domain)
    intel-rapl:1/          name = psys        -> ignored (whole platform: would double count cpu)

``/sys/class/powercap`` lists every zone flat (as symlinks); ``/sys/devices/virtual/powercap/intel-rapl`` nests the
sub-zones inside their package. Both are accepted, so a container can mount the host's tree at any path.

Each counter (``energy_uj``) is a monotonically increasing microjoule count that wraps at ``max_energy_range_uj``.
Between start and stop one wrap is recovered from the range; to survive windows longer than a wrap period (minutes
at high power on some parts), an optional background thread reads the counters every ``poll_s`` seconds and
accumulates deltas, so at most one wrap can ever fall between two reads.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading, Stopwatch, Ticker

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"

#: ``intel-rapl:<package>`` or ``intel-rapl:<package>:<sub>``; ``intel-rapl-mmio:*`` (a second interface to the
#: same package counter on recent Intel clients) deliberately does not match: reading it would double count.
_ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")

_PERMISSION_HELP = (
    "since Linux 5.10 RAPL energy_uj files are readable by root only (CVE-2020-8694). Fix one of: "
    "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj` "
    "(until reboot); run the kit as root; in a container run as root with the host's powercap tree mounted "
    "read-only (Docker and Podman mask /sys/devices/virtual/powercap by default, e.g. "
    "`-v /sys/devices/virtual/powercap/intel-rapl:/host-rapl:ro` and the environment variable "
    "BENCH_RAPL_ROOT=/host-rapl)"
)


def _read_text(path: Path) -> str:
    """Read one sysfs attribute. A module-level seam so tests can simulate kernel permission errors honestly."""
    return path.read_text(encoding="ascii").strip()


def _read_int(path: Path) -> int:
    return int(_read_text(path))


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone the meter counts: its directory name (``intel-rapl:0:2``), its ``name`` file (``dram``),
    path, component (``cpu`` or ``ram``) and wrap range (uJ; None where unreadable)."""

    zone: str
    name: str
    path: Path
    component: str
    max_energy_range_uj: int | None

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"


def _zone_dirs(root: Path) -> dict[str, Path]:
    """All ``intel-rapl:*`` zone directories, flat or nested one level inside their package, keyed by zone name.
    ``root``: the class directory (/sys/class/powercap), the control type (.../powercap/intel-rapl) or the one above
    it (/sys/devices/virtual/powercap), whose ``intel-rapl`` directory is looked into."""
    found: dict[str, Path] = {}
    try:
        entries = sorted(root.iterdir())
        if (root / "intel-rapl").is_dir() and not any(_ZONE_RE.match(e.name) for e in entries):
            entries = sorted((root / "intel-rapl").iterdir())
    except OSError:
        return found
    for entry in entries:
        if _ZONE_RE.match(entry.name) and entry.is_dir():
            found.setdefault(entry.name, entry)
            try:  # nested layout (/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0)
                found.update({s.name: s for s in sorted(entry.iterdir()) if _ZONE_RE.match(s.name) and s.is_dir()})
            except OSError:
                continue
    return found


def _scan(root: Path) -> tuple[list[RaplZone], list[tuple[str, str]]]:
    """The zones counted (packages: cpu, DRAM: ram) and those seen but not counted (zone, name): core and uncore
    are inside the package, psys covers the whole platform."""
    counted: list[RaplZone] = []
    ignored: list[tuple[str, str]] = []
    dirs = _zone_dirs(root)
    for zone in sorted(dirs, key=lambda z: [int(n) for n in z.split(":")[1:]]):  # intel-rapl:0 < intel-rapl:0:0
        try:
            name = _read_text(dirs[zone] / "name").lower()
        except (OSError, UnicodeDecodeError):
            name = "?"
        is_top = zone.count(":") == 1
        component = "cpu" if is_top and name.startswith("package") else "ram" if name.startswith("dram") else None
        if component is None:
            ignored.append((zone, name))
            continue
        try:
            max_range: int | None = _read_int(dirs[zone] / "max_energy_range_uj")
        except (OSError, ValueError):
            max_range = None
        counted.append(RaplZone(zone, name, dirs[zone], component, max_range))
    return counted, ignored


def _describe_unreadable(path: Path, exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        uid = os.getuid() if hasattr(os, "getuid") else "?"
        return f"RAPL counter {path} is not readable by this user (uid {uid}): {_PERMISSION_HELP}"
    return f"RAPL counter {path} cannot be read ({type(exc).__name__}: {exc})"


def _probe(root: Path) -> tuple[str | None, list[RaplZone], list[tuple[str, str]]]:
    """Why RAPL under ``root`` is not usable (None: it is), the zones counted and those ignored."""
    if not root.is_dir():
        why = (
            f"no powercap directory at {root}: RAPL energy counters are not exposed here (not Linux, a VM or cloud "
            "instance without RAPL, or the powercap tree not mounted into the container)"
        )
        return why, [], []
    counted, ignored = _scan(root)
    if not any(z.component == "cpu" for z in counted):
        seen = ", ".join(f"{z} ({n})" for z, n in ignored) or "no intel-rapl:* zones"
        return f"no RAPL package zone under {root} (found: {seen})", counted, ignored
    for zone in counted:
        try:
            _read_int(zone.energy_path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            return _describe_unreadable(zone.energy_path, exc), counted, ignored
    return None, counted, ignored


class RaplMeter:
    """Energy of the CPU packages (component ``cpu``) and, where exposed, DRAM (``ram``) from powercap RAPL.

    ``poll_s``: interval of the background reader that accumulates counter deltas so windows longer than one
    counter wrap stay correct; None reads only at start and stop (then at most one wrap per window is recovered).
    Raises MeterError on construction if the tree is unusable (the message says why and how to fix it).
    """

    name = "rapl"
    method = "measured:rapl"
    #: How often the hardware updates the counters (s): about 1 ms on Intel and AMD (the power-series bin floor).
    counter_period_s = 0.001

    def __init__(self, root: str | Path = DEFAULT_POWERCAP_ROOT, *, poll_s: float | None = 10.0) -> None:
        self.root = Path(root)
        why, self._zones, self._ignored = _probe(self.root)
        if why is not None:
            raise MeterError(why)
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._last_uj: dict[str, int] = {}
        self._acc_uj: dict[str, int] = {}
        self._wraps: dict[str, int] = {}
        self._stopwatch = Stopwatch()
        self._running = False
        # a failed read ends the poller: stop() reads again and raises with the same message
        self._poller = Ticker(self._accumulate, poll_s or 0.0, "bench-rapl-poll")

    @staticmethod
    def probe(root: str | Path = DEFAULT_POWERCAP_ROOT) -> tuple[bool, str]:
        """Whether RAPL under ``root`` is usable, and a one-line reason (how to fix it when it is not)."""
        why, counted, _ = _probe(Path(root))
        return why is None, why or f"RAPL readable under {root}: " + ", ".join(f"{z.name} ({z.zone})" for z in counted)

    def components(self) -> tuple[str, ...]:
        """``("cpu",)``, plus ``"ram"`` when a DRAM zone exists."""
        return tuple(c for c in ("cpu", "ram") if any(z.component == c for z in self._zones))

    def _read_all(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for zone in self._zones:
            try:
                values[zone.zone] = _read_int(zone.energy_path)
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                raise MeterError(_describe_unreadable(zone.energy_path, exc)) from exc
        return values

    def _accumulate(self) -> None:
        """Read every counter and add the delta since the previous read (recovering one wrap per zone).

        Read and added under one lock: the poller, the power-series thread and ``stop`` may all call it, and two
        reads applied out of order would look like a wrap."""
        with self._lock:
            values = self._read_all()
            for zone in self._zones:
                end, start = values[zone.zone], self._last_uj[zone.zone]
                delta = end - start
                if delta < 0:
                    if zone.max_energy_range_uj is None:
                        raise MeterError(
                            f"RAPL counter {zone.energy_path} went backwards ({start} -> {end} uJ) and "
                            f"{zone.path / 'max_energy_range_uj'} is unreadable, so the wrap cannot be recovered"
                        )
                    delta += zone.max_energy_range_uj
                    self._wraps[zone.zone] += 1
                self._acc_uj[zone.zone] += delta
                self._last_uj[zone.zone] = end

    def energy_so_far_j(self) -> dict[str, float]:
        """Energy per component since ``start`` (J), the counters read now; for the power series
        (``bench.meters.series``), thread-safe. Raises MeterError when no window is open or a counter cannot be
        read."""
        if not self._running:
            raise MeterError("RaplMeter.energy_so_far_j() called outside a window")
        self._accumulate()
        with self._lock:
            return {
                c: sum(self._acc_uj[z.zone] for z in self._zones if z.component == c) / 1e6 for c in self.components()
            }

    def start(self) -> None:
        """Open a window: read every counter (and start the poller)."""
        if self._running:
            raise MeterError("RaplMeter.start() called twice without stop()")
        values = self._read_all()
        with self._lock:
            self._last_uj = values
            self._acc_uj = {z.zone: 0 for z in self._zones}
            self._wraps = {z.zone: 0 for z in self._zones}
        self._stopwatch.start()
        self._running = True
        if self._poll_s is not None and self._poll_s > 0:
            self._poller.start()

    def stop(self) -> Reading:
        """Close the window and return the joules per component since ``start``."""
        if not self._running:
            raise MeterError("RaplMeter.stop() called without start()")
        self._poller.stop()
        self._running = False
        self._accumulate()
        duration_s = self._stopwatch.elapsed_s()
        components: dict[str, ComponentEnergy] = {}
        for component in self.components():
            zones = [z for z in self._zones if z.component == component]
            energy_uj = sum(self._acc_uj[z.zone] for z in zones)
            domains = [
                {"zone": z.zone, "name": z.name, "path": str(z.path), "energy_j": self._acc_uj[z.zone] / 1e6,
                 "max_energy_range_uj": z.max_energy_range_uj, "wraps": self._wraps[z.zone]}
                for z in zones
            ]  # fmt: skip
            detail: dict[str, object] = {
                "root": str(self.root),
                "domains": domains,
                "wraps": sum(self._wraps[z.zone] for z in zones),
                "ignored": [{"zone": zz, "name": n} for zz, n in self._ignored],
                "poll_s": self._poll_s,
            }
            # Real hardware always draws power and the counters tick about every millisecond, so a counter that
            # stands still over a noticeable window is broken (e.g. a hypervisor exposing a dead RAPL).
            if energy_uj == 0 and duration_s >= 0.1:
                why = f"RAPL {component} counters did not advance over {duration_s:.2f} s (RAPL virtualized or off?)"
                components[component] = ComponentEnergy(None, "unavailable", reason=why, detail=detail)
            else:
                components[component] = ComponentEnergy(energy_uj / 1e6, "measured:rapl", detail=detail)
        return Reading(meter=self.name, duration_s=duration_s, components=components)

    def close(self) -> None:
        """Stop the poller if a window is still open. Idempotent."""
        self._poller.stop()
        self._running = False
