# One-command set-up: a .venv with uv, the pinned lock installed, then the job.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test lint lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Ports of the demo's API and dev API: `make demo PORT=8100 DEV_PORT=8101` (environment:
# LENDGUARD_API_PORT, LENDGUARD_DEV_API_PORT; default 8000 and 8001).
demo: $(STAMP)
	$(BIN)/lendguard demo $(if $(PORT),--port $(PORT)) $(if $(DEV_PORT),--dev-port $(DEV_PORT))

test: $(STAMP)
	@command -v chromium >/dev/null || echo "note: no chromium, so the browser test is skipped; install it with: apt-get install -y chromium chromium-driver (.ci/run does)"
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # import layers and cycles: [tool.importlinter] in pyproject.toml
	$(BIN)/mypy  # types: [tool.mypy] in pyproject.toml
	$(BIN)/python -m pytest -n 2 --dist loadfile  # two workers, one test file each at a time

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-pin after editing requirements.in (requirements-style: records no download addresses).
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11 --no-header

# Removes the runtime data (warehouse, snapshots, landing zone, MLflow store) and dbt's output; keeps .venv.
clean:
	rm -rf warehouse/data target logs
