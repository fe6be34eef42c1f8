"""Containers without an engine: build plans, pre-build checks, where a run goes, and the container's run arguments.

The engine itself (Podman's Docker-compatible service) is exercised for real by `make image-check` (.ci/image-check.sh):
a build through the kit, a run through the SDK, the results on the host, the SIF archive.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import _container_run_args, build_parser
from bench.config import load_profile
from bench.containers.apptainer import default_sif_path, sif_build_command
from bench.containers.engine import Engine, NoEngine, detect_engine, nvidia_support
from bench.containers.image import BuildPlan, ContainerError, build_plan, parse_build_args, preflight_build
from bench.containers.launch import choose_where, container_run, preflight_gpu
from bench.errors import ConfigError

NO_ENGINE = "unix:///nonexistent/bench-test.sock"


def engine(name: str = "Docker Engine - Community", nvidia: str | None = None) -> Engine:
    return Engine(client=None, name=name, version="28.2.2", host="unix:///run/x.sock", nvidia=nvidia)


def test_build_plan_carries_provenance_and_overrides() -> None:
    plan = build_plan(load_profile("cpu"), {"BASE_IMAGE": "localhost/python:3.11-slim"}, ["--network=host"])
    assert plan.dockerfile.name == "Dockerfile.cpu" and plan.tag == "bench:cpu" and not plan.gpu
    assert plan.build_args["PROFILE"] == "cpu"
    assert plan.build_args["BASE_IMAGE"] == "localhost/python:3.11-slim"
    assert {"BENCH_VERSION", "MODEL_LOCK_SHA256", "GIT_COMMIT"} <= set(plan.build_args)
    docker = plan.command()
    assert docker[:3] == ["docker", "build", "--progress=plain"]
    assert docker[docker.index("-t") + 1] == "bench:cpu"
    assert "PROFILE=cpu" in docker and docker[-2:] == ["--network=host", str(plan.context)]
    podman = plan.command(engine("Podman Engine"), no_cache=True)
    assert podman[:4] == ["podman", "--url", "unix:///run/x.sock", "build"] and "--no-cache" in podman


def test_gpu_profiles_have_their_own_tag_and_the_token_only_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    plan = build_plan(load_profile("h100"))
    assert plan.gpu and plan.tag == "bench:cuda-h100" and plan.secrets == []
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    plan = build_plan(load_profile("h100"))
    assert plan.secrets == ["id=hf_token,env=HF_TOKEN"]
    assert "hf_secret_value" not in " ".join(plan.command())  # never on the command line or in a build arg


def test_parse_build_args_names_a_bad_one() -> None:
    assert parse_build_args(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(ConfigError, match=r"'NOVALUE'.*KEY=VALUE"):
        parse_build_args(["NOVALUE"])


def test_gpu_build_without_a_model_lock_says_how_to_create_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_MODEL_LOCK", str(tmp_path / "models.lock.json"))  # absent: an empty lock
    profile = load_profile("h100")
    with pytest.raises(ContainerError) as err:
        preflight_build(profile, build_plan(profile))
    assert "bench models lock" in str(err.value) and "meta-llama/Llama-3.1-8B-Instruct" in str(err.value)
    preflight_build(profile, build_plan(profile, {"CUDA_LAYERS": "0"}))  # no models fetched: no lock needed
    preflight_build(load_profile("cpu"), build_plan(load_profile("cpu")))  # CPU models ship in packages

    from bench.catalog.fetch import unlocked_models

    lock = {hub: {"revision": "0" * 40, "locked_at": "2026-11-25T00:00:00Z"} for _, hub in unlocked_models(profile)}
    (tmp_path / "models.lock.json").write_text(json.dumps({"schema_version": 1, "models": lock}))
    preflight_build(profile, build_plan(profile))  # every model locked: the build may start


def test_nvidia_support_from_runtime_cdi_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-container-toolkit binaries
    assert nvidia_support({"Runtimes": {"runc": {}, "nvidia": {}}}) == "runtime nvidia"
    assert nvidia_support({"Runtimes": {"runc": {}}}, cdi_dirs=(str(tmp_path),)) is None
    (tmp_path / "nvidia.yaml").write_text("cdiVersion: 0.5.0\n")
    assert nvidia_support({}, cdi_dirs=(str(tmp_path),)) == f"CDI spec {tmp_path / 'nvidia.yaml'}"


def test_gpu_profile_without_nvidia_runtime_is_refused_before_any_build() -> None:
    with pytest.raises(ContainerError, match=r"no NVIDIA runtime.*Container Toolkit.*--engine host"):
        preflight_gpu(engine(nvidia=None), load_profile("h100"))
    preflight_gpu(engine(nvidia="runtime nvidia"), load_profile("h100"))
    preflight_gpu(engine(nvidia=None), load_profile("cpu"))  # no GPUs asked for


def test_where_a_run_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    monkeypatch.delenv("BENCH_IMAGE_ID", raising=False)
    cpu = load_profile("cpu")
    found = detect_engine(timeout_s=1)
    assert isinstance(found, NoEngine) and NO_ENGINE in found.reason
    assert choose_where("host", cpu).engine is None
    auto = choose_where("auto", cpu)
    assert auto.engine is None and NO_ENGINE in auto.reason
    with pytest.raises(ContainerError, match=r"--engine container.*--engine host"):
        choose_where("container", cpu)
    monkeypatch.setenv("BENCH_IMAGE_ID", "sha256:abc")  # inside the image already: never nest
    assert "already inside" in choose_where("container", cpu).reason


def test_container_run_mounts_inputs_and_keeps_results_on_the_host(tmp_path: Path) -> None:
    data = tmp_path / "fktg.csv"
    data.write_text("text,label\n")
    run = container_run(
        load_profile("cpu"), "sha256:abc", ["--suite", "smoke"], tmp_path / "reports", {"fktg": str(data)}
    )
    assert (tmp_path / "reports").is_dir()
    assert run.volumes[str((tmp_path / "reports").resolve())] == {"bind": "/work/reports", "mode": "rw"}
    inside = run.volumes[str(data.resolve())]["bind"]
    assert run.volumes[str(data.resolve())]["mode"] == "ro"
    assert run.command[:5] == ["run", "--reports-dir", "/work/reports", "--profile", "cpu"]
    assert run.command[-2:] == ["--suite", "smoke"] and f"fktg={inside}" in run.command
    assert run.environment["BENCH_IMAGE_ID"] == "sha256:abc" and run.environment["HF_HUB_OFFLINE"] == "1"
    assert not run.gpus
    with pytest.raises(ContainerError, match=r"--data x=.*no such file"):
        container_run(load_profile("cpu"), "sha256:abc", [], tmp_path / "reports", {"x": str(tmp_path / "nope")})


def test_gpu_run_asks_for_every_gpu_and_a_profile_file_is_mounted(tmp_path: Path) -> None:
    toml = tmp_path / "h100.toml"
    toml.write_text((Path(__file__).resolve().parents[2] / "hardware_profiles" / "h100.toml").read_text())
    run = container_run(load_profile(str(toml)), "sha256:abc", [], tmp_path / "r", {}, profile_path=toml)
    assert run.gpus and run.command[3:5] == ["--profile", "/work/inputs/profile-h100.toml"]
    kwargs = run.sdk_kwargs()
    (request,) = kwargs["device_requests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    assert kwargs["network_mode"] == "none" and kwargs["ipc_mode"] == "host"


def test_the_container_gets_the_same_run_options() -> None:
    line = (
        "run --engine auto --profile cpu --suite smoke --run-id r1 --repetitions 2 --min-window-s 0.5 --idle-s 0 "
        "--model linear-bow --model xgboost-bow --dataset tomatoes-offline --no-codecarbon --json --new"
    )
    args = build_parser().parse_args(line.split())
    passed = _container_run_args(args)
    again = build_parser().parse_args(["run", *passed])
    for key in ("suite", "run_id", "repetitions", "min_window_s", "idle_s", "new", "json"):
        assert getattr(again, key) == getattr(args, key), key
    assert again.no_codecarbon and again.engine == "host"  # inside the image it runs where it is
    assert again.model is None and again.dataset is None  # these go through container_run, which mounts files


def test_an_adhoc_run_goes_into_the_container_with_its_files_and_folders_mounted(tmp_path: Path) -> None:
    """`bench run --engine container --dataset my.csv --model clf:./folder ...`: the same ad-hoc run inside."""
    line = (
        "run --engine container --text-column review --label-column stars --label-names 0=neg,1=pos --language de "
        "--encoding cp1252 --n-train 50 --n-test 60 --label-map LABEL_0=neg --truncate"
    )
    args = build_parser().parse_args(line.split())
    passed = _container_run_args(args)
    assert "--suite" not in passed  # no --suite: ad-hoc inside as outside
    again = build_parser().parse_args(["run", *passed])
    for key in ("text_column", "label_column", "label_names", "language", "encoding", "n_train", "n_test"):
        assert getattr(again, key) == getattr(args, key), key
    assert again.label_map == ["LABEL_0=neg"] and again.truncate

    data = tmp_path / "my.csv"
    data.write_text("review,stars\n")
    folder = tmp_path / "my-model"
    folder.mkdir()
    datasets = [str(data), f"other={data}", "tomatoes-offline"]
    models = [f"clf:{folder}", "linear-bow", "hf:org/name@abc123"]
    run = container_run(load_profile("cpu"), "sha256:abc", passed, tmp_path / "r", {}, datasets=datasets, models=models)
    command = " ".join(run.command)
    assert (
        "--dataset my=/work/inputs/dataset-0-my.csv --dataset other=/work/inputs/dataset-0-my.csv" in command
    )  # one mount
    assert "--dataset tomatoes-offline" in command
    assert "--model clf:/work/inputs/model-0-my-model --model linear-bow --model hf:org/name@abc123" in command
    assert run.volumes[str(folder.resolve())] == {"bind": "/work/inputs/model-0-my-model", "mode": "ro"}
    assert str(tmp_path) not in command  # no host path reaches the container's command line
    with pytest.raises(ContainerError, match=r"--model clf:.*nope: no such folder"):
        container_run(load_profile("cpu"), "sha256:abc", [], tmp_path / "r", {}, models=[f"clf:{tmp_path}/nope"])


def test_sif_paths_and_command() -> None:
    assert default_sif_path("h100") == Path("bench-h100.sif")
    cmd = sif_build_command("apptainer", Path("/tmp/a.tar"), Path("b.sif"))
    assert cmd == ["apptainer", "build", "--force", "b.sif", "docker-archive:///tmp/a.tar"]


def test_build_plan_refuses_a_missing_dockerfile(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "hardware_profiles" / "cpu.toml").read_text()
    toml = tmp_path / "cpu.toml"
    toml.write_text(text.replace('dockerfile = "Dockerfile.cpu"', 'dockerfile = "Dockerfile.arm"'))
    with pytest.raises(ConfigError, match=r"Dockerfile.arm.*not found"):
        build_plan(load_profile(str(toml)))
    assert isinstance(build_plan(load_profile("cpu")), BuildPlan)


def test_engine_refusals_become_clear_errors() -> None:
    from docker.errors import APIError
    from requests.exceptions import ConnectionError as RequestsConnectionError

    from bench.containers.engine import engine_errors

    refusal = 'could not select device driver "" with capabilities: [[gpu]]'
    with (
        pytest.raises(ContainerError, match=r"starting the container: the engine refused: could not select device"),
        engine_errors("starting the container"),
    ):
        raise APIError("500 Server Error", explanation=refusal)
    with (
        pytest.raises(ContainerError, match=r"exporting bench:cpu: lost the engine"),
        engine_errors("exporting bench:cpu"),
    ):
        raise RequestsConnectionError("Connection aborted.")
    with pytest.raises(ConfigError), engine_errors("anything"):  # the kit's own errors pass through unchanged
        raise ConfigError("x")


def test_a_stale_image_is_named_with_both_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from bench.containers import image as image_module

    labels = {"io.bench.profile": "cpu", "org.opencontainers.image.revision": "a" * 40}
    stale = SimpleNamespace(id="sha256:" + "0" * 64, labels=labels)
    monkeypatch.setattr("bench.environment.git_commit", lambda: "a" * 40 + "-dirty")
    (warning,) = image_module.check_image(stale, load_profile("cpu"))
    assert f"built from commit {'a' * 12}, this checkout is at {'a' * 12}-dirty" in warning
    monkeypatch.setattr("bench.environment.git_commit", lambda: "a" * 40)
    assert image_module.check_image(stale, load_profile("cpu")) == []
    with pytest.raises(ContainerError, match=r"built for profile 'cpu', not 'h100'"):
        image_module.check_image(stale, load_profile("h100"))
