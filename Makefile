# aistack.platform — the whole set-up on a fresh machine is `make up` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INVENTORY ?= inventories/local
ANSIBLE_TEST_PIP := $(HOME)/.ansible/test/cache
SANITY_ROOT := build/sanity/ansible_collections/aistack/platform
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0
export NO_COLOR ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Every .venv/bin tool is used by path; nothing depends on an activated venv.
.PHONY: help venv tools up down render test lint sanity pytest molecule build image bench-rag bench-llm clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The service version lives in __init__.py (hatch dynamic version): a bump re-installs it.
$(STAMP): requirements/lock.txt services/rag_pipeline/pyproject.toml services/rag_pipeline/rag_pipeline/__init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/lock.txt
	@# Build tools are pinned in the lock file too, hence no build isolation.
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e services/rag_pipeline
	@touch $@

# Side virtualenvs: stacks whose pins conflict with requirements/lock.txt (and with each other),
# each .venv-NAME built from requirements/NAME.txt by scripts/make-side-venv.sh. Adding one =
# its name in SIDE_VENVS, its check executable, its editable packages (if any) and a help line.
SIDE_VENVS := infinity agents crew beeai mlflow mcp finetune llamastack s3
SIDE_CHECK_infinity := infinity_emb
SIDE_CHECK_agents := aistack-agents
SIDE_EDIT_agents := services/agents
SIDE_CHECK_crew := aistack-agents
SIDE_EDIT_crew := services/agents
SIDE_CHECK_beeai := aistack-agents
SIDE_EDIT_beeai := services/agents
SIDE_CHECK_mlflow := mlflow
SIDE_CHECK_mcp := aistack-mcp-benchmark
SIDE_EDIT_mcp := services/mcp_benchmark
SIDE_CHECK_finetune := aistack-finetune
SIDE_EDIT_finetune := services/finetune
SIDE_CHECK_llamastack := llama
SIDE_CHECK_s3 := moto_server
# llama-stack 0.2.13 and later need Python 3.12: pyenv's 3.12 where there is one (its PATH shim
# fails while another version is selected), else python3.12 on PATH.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
SIDE_PYTHON_llamastack := $(PYTHON312)

side_stamp = .venv-$(1)/.requirements.sha256
# The editable packages' versions live in their __init__.py (hatch dynamic version).
side_inputs = requirements/$(1).txt scripts/make-side-venv.sh \
  $(foreach dir,$(SIDE_EDIT_$(1)),$(dir)/pyproject.toml $(wildcard $(dir)/*/__init__.py))

define side_venv_rule
$(call side_stamp,$(1)): $(call side_inputs,$(1))
	PYTHON=$(or $(SIDE_PYTHON_$(1)),$(PYTHON)) scripts/make-side-venv.sh $(1) $(SIDE_CHECK_$(1)) $(SIDE_EDIT_$(1))
$(1): $(call side_stamp,$(1))
endef
$(foreach name,$(SIDE_VENVS),$(eval $(call side_venv_rule,$(name))))

infinity: ## Separate venv for the infinity-emb embeddings server (tests)
agents: ## Separate venv for services/agents (LangGraph router, A2A server) + its tests
crew: ## Separate venv for the CrewAI research crew of services/agents + its tests
beeai: ## Separate venv for the lab's BeeAI agent (beeai-framework, a2a-sdk 0.3) + its tests
mlflow: ## Separate venv for a local MLflow tracking server (tests: traces over OTLP)
mcp: ## Separate venv for services/mcp_benchmark (the benchmark MCP server, MCP SDK) + its tests
finetune: ## Separate venv for services/finetune (LoRA fine-tuning: torch CPU, transformers, peft) + its tests
llamastack: ## Separate venv (Python 3.12) for a real Llama Stack server + client (tests/llama_stack)
s3: ## Separate venv for a real S3 API server (moto_server; tests of the object-storage output)

# They are independent and partly wait on downloads: build them side by side (2 cores: -j3).
side-venvs: ## Every side venv, built in parallel
	$(MAKE) --no-print-directory -j3 -Otarget $(SIDE_VENVS)
.PHONY: side-venvs $(SIDE_VENVS)

venv: $(STAMP) ## Create .venv with every pinned dependency

# promtool and prometheus (alert rule checks and unit tests, a real Prometheus scraping the RAG
# service) from Debian's `prometheus` package. Installed as root when missing; the Debian service
# is never started (a policy-rc.d that refuses service starts is in place during the install).
tools: ## promtool + prometheus, nginx (Debian packages) for the alert-rule, scrape and MCP-proxy tests
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null \
	  && PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "promtool/prometheus/nginx missing: run 'sudo make tools' or 'sudo apt-get install --no-install-recommends prometheus nginx-light' (Debian/Ubuntu); their tests skip until then" >&2; \
	  exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "promtool/prometheus/nginx missing and no apt-get here: install Prometheus 2.x (promtool + prometheus on PATH) and nginx; their tests skip until then" >&2; \
	  exit 0; fi; \
	policy=/usr/sbin/policy-rc.d; made=; \
	if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy && made=1; fi; \
	trap '[ -z "$$made" ] || rm -f '$$policy EXIT; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus nginx-light >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus nginx-light >/dev/null; }; \
	promtool --version | head -1

up: venv agents ## Render + validate both architectures, start the local RAG service and query router, ingest, ask
	$(BIN)/ansible-playbook -i $(INVENTORY) site.yml

down: venv ## Stop what `make up` started
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/embedded_down.yml

render: venv ## Render one inventory without a cluster: make render INVENTORY=inventories/single-node
	$(BIN)/ansible-playbook -i $(INVENTORY) site.yml -e aistack_deploy_mode=render

lint: venv ## ruff, yamllint, ansible-lint (production profile)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint --profile production
	$(BIN)/python scripts/role-readme.py --check
	$(BIN)/python scripts/awx-survey-table.py --check
	$(BIN)/python scripts/images.py check

build: venv ## Build the collection tarball into build/
	$(BIN)/ansible-galaxy collection build --force --output-path build/collection .

sanity: build ## ansible-test sanity on the built collection (offline pip bootstrap)
	@mkdir -p $(ANSIBLE_TEST_PIP)
	@for v in 24_2 25_0 25_1 25_3; do cp scripts/get-pip-standin.py $(ANSIBLE_TEST_PIP)/get_pip_$$v.py; done
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	tar -xzf build/collection/aistack-platform-*.tar.gz -C $(SANITY_ROOT)
	@# ansible-test lists content with git; the artifact gets a repository of its own.
	cd $(SANITY_ROOT) && echo "/tests/output/" > .gitignore && git init -q && git add -A
	cd $(SANITY_ROOT) && PATH=$(CURDIR)/$(BIN):$$PATH ansible-test sanity --venv --python 3.11 --color no

pytest: venv side-venvs tools ## pytest: modules, rendering, services integration
	$(BIN)/pytest

molecule: venv ## molecule test for molecule/default (render every inventory, idempotence, verify)
	@# Scenarios live in molecule/ (the layout the project documents), not extensions/molecule.
	MOLECULE_GLOB='molecule/*/molecule.yml' PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test -s default

# Two lanes on CI's 2 cores: the side venvs (partly waiting on downloads) next to lint and sanity,
# then pytest (mostly one busy process) next to molecule's renders. Each lane's output is printed
# whole when it ends (-Otarget), so the logs of the two never interleave.
test: ## Everything CI runs
	$(MAKE) --no-print-directory venv build
	$(MAKE) --no-print-directory -j2 -Otarget side-venvs tools lint sanity
	$(MAKE) --no-print-directory -j2 -Otarget pytest molecule

image: venv ## Build the container images (podman, buildah or docker): make image [IMAGES="rag-pipeline agents"]
	$(BIN)/python scripts/images.py build $(IMAGES)

bench-rag: venv ## RAG retrieval quality, ingestion throughput and query latency
	$(BIN)/python benchmarks/rag_all.py

bench-llm: venv ## Benchmark of the llm_benchmark module against guidellm
	$(BIN)/python benchmarks/llm_benchmark_bench.py

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .cache .state tests/output .pytest_cache .ruff_cache
