"""What else ran during a window (``bench.meters.others``): the CPU share of processes outside the run's tree from
scripted counters (exact arithmetic), the judging floor for short windows, the processes on the metered GPUs (fake
NVML), the validator's reasons, and the meter set handing the record back beside the meters."""

from __future__ import annotations

import os
from collections import namedtuple
from typing import Any

import pytest

from bench.devices import nvidia
from bench.meters import MeterSet
from bench.meters.base import ComponentEnergy, Reading
from bench.meters.others import MIN_JUDGED_S, OthersObserver, busy_cpu_s, clock_tick_s
from bench.results import OtherLoad
from bench.validation import others_problems
from tests.fakes.fake_pynvml import FakePynvml, fake_gpus

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
ProcTimes = namedtuple("ProcTimes", "user system children_user children_system iowait")


class FakeProcess:
    def __init__(self, ps: FakePsutil, pid: int) -> None:
        if pid not in ps.alive:
            raise ProcessLookupError(pid)
        self.pid = pid
        self._ps = ps

    def cpu_times(self) -> ProcTimes:
        return ProcTimes(self._ps.own_s[self.pid], 0.0, 0.0, 0.0, 0.0)

    def children(self, recursive: bool = False) -> list[FakeProcess]:
        return [FakeProcess(self._ps, pid) for pid in self._ps.children]

    def name(self) -> str:
        return self._ps.alive[self.pid]


class FakePsutil:
    """Scripted counters: ``busy_s`` (machine) and ``own_s`` (per own pid), moved by the test between edges."""

    def __init__(self, cpus: int = 2) -> None:
        self.cpus = cpus
        self.busy_s = 100.0
        self.own_s: dict[int, float] = {10: 5.0, 11: 1.0}
        self.children = [11]
        self.alive = {10: "python", 11: "loky-worker", 4242: "burner"}

    def cpu_count(self, logical: bool = True) -> int:
        return self.cpus

    def cpu_times(self) -> CpuTimes:
        # busy = user + system (+ guest counted inside user, as Linux does); idle and iowait are not busy
        return CpuTimes(self.busy_s - 3.0 + 2.0, 0.0, 1.0, 500.0, 7.0, 0.0, 0.0, 0.0, 2.0, 0.0)

    def Process(self, pid: int) -> FakeProcess:
        return FakeProcess(self, pid)

    def pid_exists(self, pid: int) -> bool:
        return pid in self.alive


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_busy_time_counts_guest_once_and_leaves_idle_and_iowait_out() -> None:
    times = CpuTimes(10.0, 1.0, 4.0, 100.0, 3.0, 0.5, 0.5, 0.0, 2.0, 1.0)
    assert busy_cpu_s(times) == pytest.approx(10.0 + 1.0 + 4.0 + 0.5 + 0.5 - 0.0)  # guest (3 s) inside user/nice


def test_share_of_others_is_machine_busy_minus_own_tree_over_capacity() -> None:
    ps, clock = FakePsutil(cpus=2), Clock()
    observer = OthersObserver(pid=10, psutil_module=ps, clock=clock)
    observer.start()
    clock.t = 2.0  # 2 s x 2 CPUs = 4 CPU-s of capacity
    ps.busy_s += 3.0  # the machine was busy 3 CPU-s ...
    ps.own_s[10] += 1.2  # ... of which the run itself 1.2 and its worker 0.6
    ps.own_s[11] += 0.6
    record = OtherLoad.model_validate(observer.stop())
    assert record.machine_busy_cpu_s == pytest.approx(3.0)
    assert record.own_cpu_s == pytest.approx(1.8)
    assert record.other_cpu_share == pytest.approx(1.2 / 4.0)
    assert record.judged and record.note is None and record.gpu_processes is None
    # resolution: one tick per CPU counter and two per own process, over the capacity
    assert record.resolution_share == pytest.approx(clock_tick_s() * (2 + 2 * 2) / 4.0)
    assert others_problems(record, 0.10) == [
        "other processes used 30.0% of the machine's CPU time (limit 10%; 1.20 CPU-s of 2.00 s x 2 CPUs): "
        "machine-scope energy counts them"
    ]
    assert others_problems(record, 0.35) == []


def test_a_window_too_short_to_judge_is_stored_with_a_note_and_not_flagged() -> None:
    ps, clock = FakePsutil(cpus=2), Clock()
    observer = OthersObserver(pid=10, psutil_module=ps, clock=clock)
    observer.start()
    clock.t = 0.2
    ps.busy_s += 0.4  # both CPUs busy with others: a real 100%, but over 20 ticks
    record = OtherLoad.model_validate(observer.stop())
    assert record.other_cpu_share == pytest.approx(1.0)
    assert not record.judged and record.note is not None and "too short to judge" in record.note
    assert f"judged from {MIN_JUDGED_S:g} s" in record.note
    assert others_problems(record, 0.10) == []


def test_processes_on_the_metered_gpus_are_attributed() -> None:
    ps, clock = FakePsutil(), Clock()
    nvml = FakePynvml(fake_gpus(2))
    nvml.gpus[0].processes = [(10, 2 * 2**30), (4242, 512 * 2**20)]  # the run, and another visible process
    nvml.gpus[1].processes = [(99999, None)]  # a pid this namespace does not see (a container's view)
    opened = nvidia.open_devices([0, 1], library=nvml)
    observer = OthersObserver(opened.devices, pid=10, psutil_module=ps, clock=clock)
    observer.start()
    clock.t = 1.5
    record = OtherLoad.model_validate(observer.stop())
    observer.close()
    opened.close()
    assert nvml.init_count == 0
    seen = {(p.gpu_index, p.pid, p.at): (p.own, p.name, p.used_memory_bytes) for p in record.gpu_processes or []}
    assert seen[(0, 10, "start")] == (True, "python", 2 * 2**30)
    assert seen[(0, 4242, "end")] == (False, "burner", 512 * 2**20)
    assert seen[(1, 99999, "end")] == (None, None, None)
    assert record.gpu_note is not None and "[99999]" in record.gpu_note
    assert others_problems(record, 0.10) == [
        "other process(es) on a metered GPU: GPU 0 pid 4242 (burner) 512 MiB: the GPU's energy counts them"
    ]


@pytest.mark.parametrize(
    ("hidden", "own_contexts", "tenants"), [(1, 1, None), (2, 2, None), (2, 1, {0: 1}), (3, 1, {0: 2})]
)
def test_inside_a_container_counts_tell_another_tenant(
    hidden: int, own_contexts: int, tenants: dict[int, int] | None
) -> None:
    """NVML reports host pids: inside a container none is visible, so the kit compares counts. ``hidden`` processes
    on the GPU against the run's ``own_contexts`` (e.g. vLLM's workers): more is another tenant, equal is not."""
    ps, clock = FakePsutil(), Clock()
    nvml = FakePynvml(fake_gpus(1))
    nvml.gpus[0].processes = [(300_000 + k, 2**30) for k in range(hidden)] + [(0, None)]  # + a garbled pid
    observer = OthersObserver(nvidia.open_devices([0], library=nvml).devices, pid=10, psutil_module=ps, clock=clock)
    observer.own_contexts_per_gpu = own_contexts
    observer.start()
    clock.t = 1.5
    record = OtherLoad.model_validate(observer.stop())
    observer.close()
    assert record.gpu_other_tenants == tenants
    problems = others_problems(record, 1.0)
    if tenants:
        assert problems == [
            f"GPU 0 ran {tenants[0]} compute process(es) more than this run's own CUDA contexts there (pids not "
            "visible here, a container): another tenant; the GPU's energy counts it"
        ]
    else:
        assert problems == []


def test_measure_window_tells_the_observer_the_backends_contexts() -> None:
    from bench.window import measure_window

    class Backend:
        cuda_contexts_per_gpu = 4  # vLLM, tensor parallel over 4 GPUs... per GPU one worker, plus the parent's

        def synchronize(self) -> None: ...

        def predict(self, texts: list[str]) -> list[int]:
            return [0 for _ in texts]

    ps = FakePsutil()
    observer = OthersObserver(pid=10, psutil_module=ps)
    meter_set = MeterSet([])
    meter_set.observe(observer)
    measure_window(Backend(), ["a"], meter_set, 0.0, 1)
    assert observer.own_contexts_per_gpu == 4


def test_nvml_failing_leaves_the_gpu_list_unknown_with_the_reason() -> None:
    nvml = FakePynvml(fake_gpus(1))
    nvml.gpus[0].errors["nvmlDeviceGetComputeRunningProcesses"] = nvml.NVML_ERROR_NO_PERMISSION
    observer = OthersObserver(nvidia.open_devices([0], library=nvml).devices, pid=10, psutil_module=FakePsutil())
    observer.start()
    record = OtherLoad.model_validate(observer.stop())
    observer.close()
    assert record.gpu_processes is None
    assert record.gpu_note is not None and "NoPermission" in record.gpu_note


class ConstantMeter:
    name = "constant"

    def components(self) -> tuple[str, ...]:
        return ("cpu",)

    def start(self) -> None:
        pass

    def stop(self) -> Reading:
        return Reading("constant", 1.0, {"cpu": ComponentEnergy(10.0, "measured:rapl")})

    def close(self) -> None:
        pass


class BrokenObserver:
    name = "others"

    def start(self) -> None:
        raise OSError("no /proc")

    def stop(self) -> dict[str, Any]:
        raise AssertionError("not reached")

    def close(self) -> None:
        pass


def test_meter_set_hands_the_observers_record_back_and_survives_a_broken_one() -> None:
    meters = MeterSet([ConstantMeter()])
    meters.observe(OthersObserver(psutil_module=FakePsutil(), pid=10))
    meters.start()
    reading = meters.stop()
    assert reading.components["cpu"].energy_j == 10.0
    assert reading.observed["others"]["logical_cpus"] == 2
    broken = MeterSet([ConstantMeter()])
    broken.observe(BrokenObserver())
    broken.start()
    assert broken.stop().observed == {"others": {"error": "OSError: no /proc"}}


def test_the_real_machine_reads_a_share_between_zero_and_one() -> None:
    """The real psutil over a short window: the arithmetic holds on this kernel's counters. The bounds are loose on
    purpose (per-CPU busy time is tick-sampled, a short window is noisy); a unit error (ms, ticks) breaks them."""
    observer = OthersObserver()
    observer.start()
    sum(i * i for i in range(200_000))  # some CPU time of our own
    record = OtherLoad.model_validate(observer.stop())
    assert record.logical_cpus == (os.cpu_count() or 1)
    assert record.own_cpu_s is not None and record.own_cpu_s >= 0
    assert record.other_cpu_share is not None
    assert -1.0 <= record.other_cpu_share <= 2.0


def test_own_time_counted_a_hair_over_the_machines_reads_as_no_others() -> None:
    """Seen in CI: the tree's per-process ticks exceeded the machine's per-CPU ticks by 8.7e-13 s; the share is kept
    at 0 (never negative), and the raw times stay in the record."""
    ps, clock = FakePsutil(cpus=2), Clock()
    observer = OthersObserver(pid=10, psutil_module=ps, clock=clock)
    observer.start()
    clock.t = 1.2
    ps.busy_s += 1.32
    ps.own_s[10] += 1.34
    record = OtherLoad.model_validate(observer.stop())
    assert record.other_cpu_share == 0.0
    assert record.own_cpu_s == pytest.approx(1.34) and record.machine_busy_cpu_s == pytest.approx(1.32)
