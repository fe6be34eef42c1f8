"""The device layer's interface: what the GPU meter and the observer need of one accelerator, whatever its vendor.

Units are in the names: ``energy_mj`` (millijoules, as NVML and amdsmi count), ``power_w`` (watts). Errors are
``DeviceError`` (a ``MeterError``) naming the device, the call and what to do; its ``kind`` says what the meter may
do about it (``unsupported``: fall back; ``not_ready``: retried, then fall back; ``unavailable``: no usable library or
driver here; ``permission``, ``lost``, ``mig``, ``other``: the window fails with the message).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.errors import MeterError


class DeviceError(MeterError):
    """A device call failed: ``kind`` (above), ``device`` (its label, where known), ``call``, ``code`` (the
    library's return code)."""

    kind = "other"

    def __init__(
        self, message: str, *, kind: str = "", device: str | None = None, call: str | None = None, code: Any = None
    ) -> None:
        super().__init__(message)
        self.kind, self.device, self.call, self.code = kind or self.kind, device, call, code


class DeviceUnavailableError(DeviceError):
    """No usable device library here (not installed, driver missing, no device visible): a normal state on CPU
    machines, recorded as the reason a component is unavailable."""

    kind = "unavailable"


@dataclass
class DeviceFacts:
    """What does not change while a device is open. ``index``: the vendor library's; ``cuda_index``: the run's
    framework's (None where it does not use the device); ``matched_by``: how the two were matched (``uuid``,
    ``pci-bus-id``, ...). ``scope``: what power and energy cover: ``gpu`` (the board), ``module`` (a Grace
    Hopper/Blackwell superchip: GPU, CPU and memory) or ``gcd-pair`` (an MI250/MI250X module: both GCDs);
    ``scope_note`` says which devices that is. ``counted_in``: the index of the device whose reading includes this
    one's (an MI250X's second GCD), which is then never read itself. ``power_limit_w``: enforced;
    ``power_limit_range_w``: settable."""

    vendor: str
    index: int
    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    cuda_index: int | None = None
    matched_by: str | None = None
    scope: str = "gpu"
    scope_note: str | None = None
    counted_in: int | None = None
    memory_gb: float | None = None
    power_limit_w: float | None = None
    power_limit_range_w: tuple[float, float] | None = None
    persistence_mode: bool | None = None
    power_source: str | None = None

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.name})"


class Accelerator:
    """One open device, the base class of each vendor's. Reads are thread-safe (the meter's sampler and the power
    series call them). ``call``: the vendor's ``call(lib, what, function, label)``, turning its library's errors
    into DeviceError."""

    facts: DeviceFacts
    counter_method: str  # method labels (``bench.meters.base.METHODS``) of its energy counter and power sampling
    sampling_method: str
    _lib: Any
    call: Callable[..., Any]

    def _call(self, what: str, function: Callable[[], Any]) -> Any:
        return self.call(self._lib, what, function, self.facts.label)

    def _opt(self, what: str, function: Callable[[], Any]) -> Any:
        """``function()`` or None where the device or driver does not support it (telemetry never fails a window)."""
        try:
            return self._call(what, function)
        except (DeviceError, AttributeError):
            return None

    def energy_mj(self) -> int:
        """The energy counter, mJ since the driver loaded. DeviceError(kind="unsupported") where none."""

    def power_w(self) -> float:
        """Power now, W: the instantaneous reading where the device has one (``facts.power_source`` says which)."""

    def state(self) -> dict[str, Any]:
        """Telemetry at a window edge (clocks MHz, temperature C, power limit W, clocks-event reasons, violation
        counters ns); None where unsupported. Never raises."""

    def processes(self) -> list[tuple[int, int | None]]:
        """Compute processes on the device: (pid as the library reports it, used memory in bytes or None)."""

    def close(self) -> None:
        """Nothing to release per device: ``Opened.close`` shuts the vendor's library down."""


@contextlib.contextmanager
def released_on_error(release: Callable[[], Any]) -> Iterator[None]:
    """Run the block; if it raises, call ``release`` (e.g. ``nvmlShutdown``; its own errors ignored) and re-raise."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            release()
        raise


@dataclass
class Opened:
    """What a vendor's ``open_devices`` found: the devices opened, those skipped (``index``, ``reason``: a GPU the
    process may not open is recorded, not fatal), the driver, and ``release`` (e.g. ``nvmlShutdown``)."""

    devices: list[Any]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    driver: str | None = None
    release: Callable[[], Any] | None = None

    def close(self) -> None:
        """Close every device and release the library (idempotent; errors ignored)."""
        for device in self.devices:
            with contextlib.suppress(Exception):
                device.close()
        release, self.release = self.release, None
        if release is not None:
            with contextlib.suppress(Exception):
                release()
