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

demo: $(STAMP)
	$(BIN)/lendguard demo

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

clean:
	rm -rf warehouse/data target logs
