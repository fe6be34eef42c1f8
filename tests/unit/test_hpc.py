"""bench.hpc without a cluster: placements, the generated sbatch / Ray / vLLM lines, multi-node aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.catalog.models import get_model_spec, split_placement
from bench.catalog.placement import Placement, placement_for
from bench.cli import main
from bench.config import load_profile
from bench.errors import ConfigError, MeterError
from bench.hpc.multinode import ray_start_lines
from bench.hpc.slurm import SlurmRequest, _array_spec, prepare
from bench.meters import WindowReading
from bench.meters.base import ComponentEnergy, Reading
from bench.meters.multinode import NodesMeterSet, aggregate_nodes, node_names

REPO = Path(__file__).resolve().parents[2]


def _profile_with(
    tmp_path: Path, base: str, name: str, extra: str = "", replace: tuple[str, str] | None = None
) -> Path:
    text = (REPO / "hardware_profiles" / f"{base}.toml").read_text().replace(f'name = "{base}"', f'name = "{name}"')
    if replace:
        text = text.replace(*replace)
    path = tmp_path / f"{name}.toml"
    path.write_text(text + extra)
    return path


# --- placements ---------------------------------------------------------------------------------------------------


def test_placement_variants_parse_and_carry_tp_and_pp() -> None:
    assert split_placement("llama-3.1-70b@2x1") == ("llama-3.1-70b", (2, 1))
    assert split_placement("linear-bow") == ("linear-bow", None)
    spec = get_model_spec("llama-3.1-70b@2x1")
    assert spec.name == "llama-3.1-70b@2x1" and spec.paper_label == "Llama 3.1 70B"
    assert spec.params["gpus"] == 1 and spec.params["pipeline_parallel_size"] == 2
    with pytest.raises(ConfigError, match="<nodes>x<gpus per node>"):
        split_placement("llama-3.1-70b@2")
    with pytest.raises(ConfigError, match="only LLMs"):
        get_model_spec("linear-bow@1x2")


def test_paper_placements_on_h100_nodes() -> None:
    h100 = load_profile("h100")
    assert placement_for(get_model_spec("llama-3.1-8b"), h100) == Placement(1, 1)
    assert placement_for(get_model_spec("llama-3.1-70b"), h100) == Placement(1, 2)
    assert placement_for(get_model_spec("linear-bow"), h100) == Placement(1, 1)
    assert placement_for(get_model_spec("linear-bow"), load_profile("cpu")) == Placement(1, 0)
    # an LLM of the user's: its size is not in the catalog, one GPU
    assert placement_for(get_model_spec("hf:/models/mine[serving=scoring]"), h100) == Placement(1, 1)
    # the paper's two-node run: 1 GPU on each of two nodes, only where multi-node is enabled
    assert placement_for(get_model_spec("llama-3.1-70b@2x1"), h100, max_nodes=2) == Placement(2, 1)
    with pytest.raises(ConfigError, match="cannot hold the model, it needs 2"):
        placement_for(get_model_spec("llama-3.1-70b@1x1"), h100)
    with pytest.raises(ConfigError, match="a node of profile 'h100' has 4"):
        placement_for(get_model_spec("llama-3.1-8b@1x8"), h100)


def test_model_larger_than_a_node_needs_multi_node() -> None:
    v100 = load_profile("v100")  # 4 x 32 GB: a 70B model needs 8 GPUs
    with pytest.raises(ConfigError) as err:
        placement_for(get_model_spec("llama-3.1-70b"), v100)
    message = str(err.value)
    for part in ("'llama-3.1-70b'", "needs 8 GPUs of 32 GB", "has 4 GPUs", "max_nodes = 2", "larger GPUs"):
        assert part in message
    assert placement_for(get_model_spec("llama-3.1-70b"), v100, max_nodes=2) == Placement(2, 4)


def test_bench_slurm_refuses_before_writing_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a v100 profile whose suite holds a 70B model (not excluded), multi-node not enabled
    profile = _profile_with(
        tmp_path,
        "v100",
        "v100big",
        '\n[suites.big]\ndatasets = ["tomatoes-offline"]\nmodels = ["linear-bow", "ds-llama-70b"]\nrepetitions = 1\n',
        replace=('"ds-llama-70b" = "needs 8 GPUs of 32 GB in 16 bit, the profile has 4"\n', ""),
    )
    out = tmp_path / "out"
    assert main(["slurm", "--profile", str(profile), "--suite", "big", "--output", str(out), "--host", "--submit"]) == 2
    err = capsys.readouterr().err
    assert "'ds-llama-70b' needs 8 GPUs of 32 GB" in err and "max_nodes" in err
    assert not out.exists()  # nothing written, nothing submitted


# --- scripts ------------------------------------------------------------------------------------------------------


def test_array_spec_is_compact() -> None:
    assert _array_spec([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert _array_spec([3]) == "3"


def test_gpu_scripts_in_apptainer_one_per_shape(tmp_path: Path) -> None:
    profile = _profile_with(
        tmp_path,
        "h100",
        "h100x",
        '\n[suites.mix]\ndatasets = ["news", "yelp"]\nmodels = ["linear-bow", "llama-3.1-8b", "llama-3.1-70b", '
        '"qwen-72b"]\nrepetitions = 3\n',
    )
    prepared = prepare(
        SlurmRequest(
            profile=str(profile), run={"suite_name": "mix"}, output=tmp_path / "out", image="/images/bench-h100.sif"
        )
    )
    shapes = {p.name: [t.model for t in tasks] for p, tasks in prepared.scripts}
    assert shapes == {
        "array-1x1.sbatch": ["linear-bow", "llama-3.1-8b"],
        "array-1x2.sbatch": ["llama-3.1-70b", "qwen-72b"],
    }
    two = (tmp_path / "out" / "slurm" / "array-1x2.sbatch").read_text()
    assert "#SBATCH --gres=gpu:2\n" in two and "#SBATCH --array=2-3\n" in two and "#SBATCH --nodes=1\n" in two
    assert "#SBATCH --cpus-per-task=16\n" in two and "#SBATCH --time=24:00:00\n" in two  # h100's [slurm]
    assert "apptainer exec --nv --bind" in two and "/images/bench-h100.sif bench run --profile" in two
    assert "--gpus 2" in two and "--nodes" not in two.split("bench run")[1]
    assert "ray start" not in two
    # one model load per task: its data sets and repetitions inside
    assert prepared.manifest["tasks"][2] == {
        "index": 2,
        "name": "llama-3.1-70b",
        "model": "llama-3.1-70b",
        "datasets": ["news", "yelp"],
        "repetitions": 3,
        "nodes": 1,
        "gpus_per_node": 2,
    }


def test_host_mode_uses_the_venv(tmp_path: Path) -> None:
    prepared = prepare(
        SlurmRequest(
            profile="cpu", run={"suite_name": "smoke"}, output=tmp_path / "o", mode="host", venv=Path("/opt/venv")
        )
    )
    ((script, _),) = prepared.scripts
    text = script.read_text()
    assert "/opt/venv/bin/bench run --profile cpu --suite smoke" in text and "apptainer" not in text
    assert "--gres" not in text and "#SBATCH --cpus-per-task=2\n" in text and "#SBATCH --mem=4096M\n" in text


def test_multi_node_script_starts_ray_and_runs_pipeline_parallel(tmp_path: Path) -> None:
    profile = _profile_with(
        tmp_path,
        "h100",
        "h100mn",
        '\n[suites.mn]\ndatasets = ["news"]\nmodels = ["llama-3.1-70b@1x2", "llama-3.1-70b@2x1"]\nrepetitions = 10\n',
        replace=("max_nodes = 2\n", "max_nodes = 2\nray_port = 6380\n"),
    )
    prepared = prepare(SlurmRequest(profile=str(profile), run={"suite_name": "mn"}, output=tmp_path / "o", mode="host"))
    text = (tmp_path / "o" / "slurm" / "array-2x1.sbatch").read_text()
    assert "#SBATCH --nodes=2\n" in text and "#SBATCH --gres=gpu:1\n" in text
    assert 'srun --overlap --nodes=1 --ntasks=1 -w "$BENCH_HEAD"' in text
    assert 'ray start --head --node-ip-address="$BENCH_HEAD_IP" --port=6380 --num-cpus=16 --num-gpus=1 --block' in text
    assert 'ray start --address="$RAY_ADDRESS" --num-cpus=16 --num-gpus=1 --block' in text
    assert text.index("ray start --head") < text.index("bench run")
    assert "--gpus 1 --nodes 2" in text
    assert [t.name for _, tasks in prepared.scripts for t in tasks] == ["llama-3.1-70b_1x2", "llama-3.1-70b_2x1"]


def test_ray_and_vllm_lines() -> None:
    lines = ray_start_lines(port=6379, gpus_per_node=4, cpus_per_task=16, ray="ray")
    text = "\n".join(lines)
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in text
    assert 'export RAY_ADDRESS="$BENCH_HEAD_IP:6379"' in text
    assert 'for BENCH_NODE in "${BENCH_NODES[@]:1}"' in text  # workers on every node but the first


def test_vllm_engine_uses_ray_across_nodes(tmp_path: Path) -> None:
    from bench.backends.vllm_backend import VllmBackend

    backend = VllmBackend(str(tmp_path), device="cuda", gpus=1, pipeline_parallel_size=2)
    args = backend._resolve_engine_args(str(tmp_path))
    assert args["tensor_parallel_size"] == 1 and args["pipeline_parallel_size"] == 2
    assert args["distributed_executor_backend"] == "ray"
    single = VllmBackend(str(tmp_path), device="cuda", gpus=2)._resolve_engine_args(str(tmp_path))
    assert "distributed_executor_backend" not in single


# --- multi-node aggregation ---------------------------------------------------------------------------------------


def _reading(duration_s: float, gpu_j: float | None, cpu_j: float, gpus: int = 1) -> WindowReading:
    gpu = (
        ComponentEnergy(
            gpu_j,
            "measured:nvml-energy-counter",
            detail={"gpus": [{"index": i, "energy_j": gpu_j / gpus} for i in range(gpus)]},
        )
        if gpu_j is not None
        else ComponentEnergy(None, "unavailable", "NVML not readable")
    )
    return WindowReading(
        duration_s=duration_s,
        components={
            "gpu": gpu,
            "cpu": ComponentEnergy(cpu_j, "measured:rapl"),
            "ram": ComponentEnergy(2.0, "estimated:ram-0.375W/GB"),
        },
        side={"codecarbon": Reading("codecarbon", duration_s, {"cpu": ComponentEnergy(cpu_j, "measured:codecarbon")})},
    )


def test_energy_is_summed_over_nodes_and_duration_is_the_maximum() -> None:
    merged = aggregate_nodes({"n1": _reading(10.0, 3000.0, 500.0, gpus=2), "n2": _reading(12.5, 2500.0, 400.0, gpus=2)})
    assert merged.duration_s == 12.5
    assert merged.components["gpu"].energy_j == pytest.approx(5500.0)
    assert merged.components["cpu"].energy_j == pytest.approx(900.0)
    assert merged.components["ram"].energy_j == pytest.approx(4.0)
    assert merged.side["codecarbon"].components["cpu"].energy_j == pytest.approx(900.0)
    gpus = merged.components["gpu"].detail["gpus"]
    assert [g["node"] for g in gpus] == ["n1", "n1", "n2", "n2"]  # every GPU of every node, for the count check
    assert merged.components["gpu"].detail["nodes"]["n2"]["energy_j"] == 2500.0
    assert set(merged.nodes) == {"n1", "n2"}


def test_a_node_that_could_not_measure_makes_the_sum_null_with_its_reason() -> None:
    merged = aggregate_nodes({"n1": _reading(10.0, 3000.0, 500.0), "n2": _reading(10.0, None, 400.0)})
    gpu = merged.components["gpu"]
    assert gpu.energy_j is None and "n2: NVML not readable" in gpu.reason
    with pytest.raises(MeterError):
        aggregate_nodes({})


class _FakeLocal:
    def __init__(self, reading: WindowReading, log: list[str], name: str) -> None:
        self.reading, self.log, self.name = reading, log, name
        self.min_window_s = 10.0

    def start(self) -> None:
        self.log.append(f"start:{self.name}")

    def stop(self) -> WindowReading:
        self.log.append(f"stop:{self.name}")
        return self.reading

    def min_window_by(self) -> str:
        return "nvml"

    def describe(self) -> dict:
        return {"components": {}}

    def close(self) -> None:
        self.log.append(f"close:{self.name}")


def test_nodes_meter_set_opens_every_node_and_aggregates() -> None:
    log: list[str] = []
    local = _FakeLocal(_reading(10.0, 1000.0, 100.0), log, "head")
    remote = _FakeLocal(_reading(11.0, 900.0, 90.0), log, "worker")
    nodes = NodesMeterSet(local, "head", {"worker": remote})
    nodes.start()
    reading = nodes.stop()
    nodes.close()
    assert log == ["start:worker", "start:head", "stop:head", "stop:worker", "close:head"]
    assert reading.duration_s == 11.0 and reading.components["gpu"].energy_j == pytest.approx(1900.0)
    assert nodes.min_window_s == 10.0 and nodes.describe()["nodes"] == ["head", "worker"]


@pytest.mark.parametrize(
    "name", ["cpu", "h100", "a100", "a30", "v100", "l4", "h200", "b200", "gh200", "mi300x", "mi250x", "apple-m"]
)
def test_every_model_of_every_shipped_suite_has_a_placement(name: str) -> None:
    profile = load_profile(name)
    for suite in profile.suites.values():
        for model in suite.models:
            placement = placement_for(get_model_spec(model), profile)
            assert placement.nodes <= profile.slurm.max_nodes
            assert placement.gpus_per_node <= profile.hardware.gpu_count


def test_the_paper_experiments_ship_as_suites() -> None:
    h100 = load_profile("h100")
    sweep = h100.suite("gpu-count").models
    assert {"llama-3.1-8b@1x1", "llama-3.1-8b@1x2", "llama-3.1-8b@1x4"} <= set(sweep)
    assert "llama-3.1-70b@1x1" not in sweep and "llama-3.1-70b@1x2" in sweep  # 70B needs 2 H100s
    nodes = h100.suite("nodes").models
    assert nodes == [
        f"{m}@{p}" for m in ("llama-3.1-70b", "qwen-72b", "jamba-mini-1.5", "ds-llama-70b") for p in ("1x2", "2x1")
    ]
    assert h100.slurm.multi_node and not load_profile("v100").slurm.multi_node
    placements = {placement_for(get_model_spec(m), h100) for m in nodes}
    assert placements == {Placement(1, 2), Placement(2, 1)}


def _fake_ray(
    monkeypatch: pytest.MonkeyPatch, nodes: list[dict], here: str, options: list[dict] | None = None
) -> list[str]:
    """A stand-in for the `ray` package: actors run in this process; records where each was pinned (and, into
    ``options``, every actor's options)."""
    import sys
    import types

    pinned: list[str] = []

    class _Method:
        def __init__(self, fn):
            self.fn = fn

        def remote(self, *a, **k):
            return self.fn(*a, **k)

    class _ActorHandle:
        def __init__(self, obj):
            self.obj = obj
            for name in ("start", "stop"):
                setattr(self, name, _Method(getattr(obj, name)))

    class _ActorClass:
        def __init__(self, cls):
            self.cls = cls

        def options(self, scheduling_strategy, **kw):
            pinned.append(scheduling_strategy.node_id)
            if options is not None:
                options.append({"scheduling_strategy": scheduling_strategy, **kw})
            return self

        def remote(self, *a):
            return _ActorHandle(self.cls(*a))

    ray = types.ModuleType("ray")
    ray.init = lambda **kw: None
    ray.get = lambda value: value
    ray.nodes = lambda: nodes
    ray.get_runtime_context = lambda: types.SimpleNamespace(get_node_id=lambda: here)
    ray.remote = lambda **kw: _ActorClass
    util = types.ModuleType("ray.util")
    strategies = types.ModuleType("ray.util.scheduling_strategies")
    strategies.NodeAffinitySchedulingStrategy = lambda node_id, soft: types.SimpleNamespace(node_id=node_id, soft=soft)
    for name, module in (("ray", ray), ("ray.util", util), ("ray.util.scheduling_strategies", strategies)):
        monkeypatch.setitem(sys.modules, name, module)
    return pinned


def test_connect_ray_nodes_pins_a_meter_actor_on_every_other_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.meters import build_meter_set
    from bench.meters.multinode import connect_ray_nodes

    nodes = [
        {"NodeID": "head-id", "Alive": True, "NodeManagerHostname": "n1"},
        {"NodeID": "w-id", "Alive": True, "NodeManagerHostname": "n2"},
        {"NodeID": "dead-id", "Alive": False, "NodeManagerHostname": "n3"},
    ]
    pinned = _fake_ray(monkeypatch, nodes, here="head-id")
    kwargs = {"codecarbon": False, "use_gpu": False}
    meters = connect_ray_nodes(build_meter_set(**kwargs), kwargs, expected_nodes=2)
    assert pinned == ["w-id"] and list(meters.remotes) == ["n2"]
    meters.start()
    reading = meters.stop()
    meters.close()
    assert len(reading.nodes) == 2 and reading.components["ram"].energy_j == pytest.approx(
        sum(r.components["ram"].energy_j for r in reading.nodes.values())
    )
    with pytest.raises(MeterError, match="Ray sees 2 node"):
        connect_ray_nodes(build_meter_set(**kwargs), kwargs, expected_nodes=3)


def test_multi_node_without_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from bench.meters.multinode import connect_ray_nodes

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MeterError, match="needs Ray"):
        connect_ray_nodes(object(), {}, expected_nodes=2)


def test_remote_meter_actors_see_their_nodes_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray hides every GPU from an actor without GPUs (CUDA_VISIBLE_DEVICES=''): the meter actor opts out of that
    and meters the GPUs Slurm gave its node."""
    from bench.meters import build_meter_set
    from bench.meters.multinode import connect_ray_nodes, node_gpu_indices
    from tests.fakes.fake_pynvml import FakeGpu, FakePynvml

    nodes = [{"NodeID": "head-id", "Alive": True, "NodeManagerHostname": "n1"}]
    nodes.append({"NodeID": "w-id", "Alive": True, "NodeManagerHostname": "n2"})
    options: list[dict] = []
    _fake_ray(monkeypatch, nodes, here="head-id", options=options)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what Ray sets in an actor that asked for no GPU
    monkeypatch.setenv("SLURM_JOB_GPUS", "2,3")
    fake = FakePynvml([FakeGpu(power_w=100.0) for _ in range(4)])
    kwargs = {"codecarbon": False, "use_gpu": True, "nvml": fake}
    meters = connect_ray_nodes(build_meter_set(codecarbon=False, use_gpu=False), kwargs, expected_nodes=2)
    (opts,) = options
    assert opts["runtime_env"]["env_vars"]["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] == "1"
    remote = meters.remotes["n2"].actor.obj.meters  # type: ignore[attr-defined]
    assert remote.owner("gpu") is not None and remote.owner("gpu").indices == [2, 3]
    meters.close()
    assert node_gpu_indices({"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_GPUS": "2,3"}) is None  # the step's own view
    assert node_gpu_indices({"SLURM_STEP_GPUS": "0", "SLURM_JOB_GPUS": "0,1"}) == [0]
    assert node_gpu_indices({}) is None


def test_the_default_sif_is_the_one_make_sif_writes_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make sif` / `bench image sif` write ./bench-<profile>.sif; `bench slurm` from that folder uses it, absolute."""
    from bench.containers.apptainer import default_sif_path

    monkeypatch.chdir(tmp_path)
    prepared = prepare(SlurmRequest(profile="cpu", run={"suite_name": "smoke"}, output=Path("out")))
    sif = str(tmp_path / default_sif_path("cpu"))
    assert prepared.manifest["image"] == sif and sif.endswith("/bench-cpu.sif")
    ((script, _),) = prepared.scripts
    assert f" {sif} bench run " in script.read_text()
    relative = prepare(
        SlurmRequest(profile="cpu", run={"suite_name": "smoke"}, output=Path("out2"), image="imgs/x.sif")
    )
    assert relative.manifest["image"] == str(tmp_path / "imgs" / "x.sif")  # --image still wins, made absolute


def test_node_names_are_unique_even_where_host_names_repeat() -> None:
    nodes = [
        {"NodeID": "aaaa1111ffff", "NodeManagerHostname": "gpu01", "NodeManagerAddress": "10.0.0.1"},
        {"NodeID": "bbbb2222ffff", "NodeManagerHostname": "gpu02", "NodeManagerAddress": "10.0.0.2"},
    ]
    assert node_names(nodes) == ["gpu01", "gpu02"]  # a real cluster: the host names, as the report shows them
    twins = [dict(nodes[0]), dict(nodes[1], NodeManagerHostname="gpu01")]  # two raylets on one machine
    assert node_names(twins) == ["gpu01 (10.0.0.1, node aaaa1111)", "gpu01 (10.0.0.2, node bbbb2222)"]
    with pytest.raises(MeterError, match="two nodes named 'gpu01'"):
        NodesMeterSet(object(), "gpu01", {"gpu01": object()})  # type: ignore[dict-item]


def test_multi_node_span_is_the_power_weighted_mean_of_the_node_windows() -> None:
    # n1: 300 W over 10 s, n2: 200 W over 12.5 s (it opened before and closed after n1).
    merged = aggregate_nodes({"n1": _reading(10.0, 3000.0, 500.0), "n2": _reading(12.5, 2500.0, 400.0)})
    assert merged.power_w("gpu") == pytest.approx(300.0 + 200.0)
    assert merged.component_duration_s["gpu"] == pytest.approx(5500.0 / 500.0)  # 11 s, not the max 12.5 s
    # Subtracting idle at the same powers over that span leaves exactly nothing: no edge skew in the net.
    assert merged.components["gpu"].energy_j - merged.power_w("gpu") * merged.component_duration_s["gpu"] == (
        pytest.approx(0.0, abs=1e-9)
    )
    partial = aggregate_nodes({"n1": _reading(10.0, 3000.0, 500.0), "n2": _reading(10.0, None, 400.0)})
    assert partial.power_w("gpu") is None and "gpu" not in partial.component_duration_s


def test_own_data_ships_to_apptainer_tasks_with_its_files_bound(tmp_path: Path) -> None:
    """An ad-hoc Slurm run: no --suite in the task line, files as NAME=/absolute/path, own folders bound read-only."""
    data = tmp_path / "data" / "my.csv"
    data.parent.mkdir()
    data.write_text("review,stars\n" + "".join(f"w{i} x{i},{i % 2}\n" for i in range(100)))
    from tests.tiny_models import build_tiny_classifier

    folder = build_tiny_classifier(tmp_path / "my-model", {0: "neg", 1: "pos"})  # config, weights and tokenizer
    prepared = prepare(
        SlurmRequest(
            profile="cpu",
            output=tmp_path / "o",
            image="/images/bench-cpu.sif",
            run={
                "suite_given": False,
                "datasets": [str(data)],
                "models": ["linear-bow", f"clf:{folder}"],
                "text_column": "review",
                "label_column": "stars",
                "label_names": {"0": "neg", "1": "pos"},
                "truncate": True,
            },
        )
    )
    assert prepared.manifest["suite_name"] == "adhoc" and prepared.manifest["overrides"]["suite_given"] is False
    ((script, tasks),) = prepared.scripts
    text = script.read_text()
    assert "--suite" not in text and f"--dataset my={data.resolve()}" in text
    assert "--text-column review --label-column stars --label-names 0=neg,1=pos --truncate" in text
    assert f"--bind {data.parent.resolve()}:{data.parent.resolve()}:ro" in text
    assert f"--bind {folder.resolve()}:{folder.resolve()}:ro" in text
    assert [t.model for t in tasks] == ["linear-bow", f"clf:{folder.resolve()}"]


def test_an_adhoc_slurm_run_is_checked_before_any_job_is_written(tmp_path: Path) -> None:
    from bench.errors import DataError

    bad = tmp_path / "one.csv"
    bad.write_text("text,label\n" + "".join(f"word{i} other{i},a\n" for i in range(100)))  # a single class
    with pytest.raises(DataError, match=r"one\.csv.*class"):
        prepare(
            SlurmRequest(
                profile="cpu",
                output=tmp_path / "o",
                mode="host",
                run={"suite_given": False, "datasets": [str(bad)], "models": ["linear-bow"]},
            )
        )
    assert not (tmp_path / "o").exists()
    good = tmp_path / "two.csv"
    good.write_text("text,label\n" + "".join(f"word{i} other{i},{'ab'[i % 2]}\n" for i in range(100)))
    with pytest.raises(ConfigError, match=r"nothere"):
        prepare(
            SlurmRequest(
                profile="cpu",
                output=tmp_path / "o",
                mode="host",
                run={"suite_given": False, "datasets": [str(good)], "models": [f"clf:{tmp_path}/nothere"]},
            )
        )
    assert not (tmp_path / "o").exists()


def test_model_store_is_recorded_bound_read_only_and_passed_to_every_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench slurm --model-store DIR`, as `bench run` takes it: the manifest records the absolute folder, the Apptainer
    tasks bind it read-only at the same path and their `bench run` lines name it; host tasks get the option only."""
    store = tmp_path / "store"
    store.mkdir()
    out = tmp_path / "o"
    args = ["--profile", "h100", "--suite", "offline", "--output", str(out), "--image", "/images/b.sif"]
    rc = main(["slurm", *args, "--model-store", str(store)])
    assert rc == 0, capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_store"] == str(store.resolve())
    script = sorted((out / "slurm").glob("*.sbatch"))[0]
    text = script.read_text()
    apptainer, run_args = text.split(" bench run ", 1)[0].rsplit("\n", 1)[-1], text.split(" bench run ", 1)[1]
    assert f"--bind {store.resolve()}:{store.resolve()}:ro" in apptainer
    assert f"--model-store {store.resolve()}" in run_args.splitlines()[0]
    host = prepare(
        SlurmRequest(profile="cpu", run={"suite_name": "smoke"}, output=tmp_path / "h", mode="host", model_store=store)
    )
    host_text = host.scripts[0][0].read_text()
    assert f"--model-store {store.resolve()}" in host_text and "--bind" not in host_text
    # without the option: nothing bound, nothing passed, recorded as None
    plain = prepare(
        SlurmRequest(profile="cpu", run={"suite_name": "smoke"}, output=tmp_path / "p", image="/images/b.sif")
    )
    assert plain.manifest["model_store"] is None and "--model-store" not in plain.scripts[0][0].read_text()
    # a folder that is not there is refused before anything is written
    with pytest.raises(ConfigError, match=r"--model-store .*no such folder"):
        prepare(
            SlurmRequest(
                profile="cpu", run={"suite_name": "smoke"}, output=tmp_path / "x", model_store=tmp_path / "nothere"
            )
        )
    assert not (tmp_path / "x").exists()
