# One-command set-up: a .venv with uv, the pinned lock installed, then the job.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BYTECODE := $(VENV)/.bytecode

export MLFLOW_DISABLE_TELEMETRY := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup demo bisg-book test test-quick lint lock lock-spark clean

# requirements-spark.lock: the Spark engine (dbt-spark, a local pyspark; it needs Java 17), pinned to agree
# with requirements.lock.
$(STAMP): requirements.lock requirements-spark.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-spark.lock -c requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Ports of the demo's API and dev API: `make demo PORT=8100 DEV_PORT=8101` (environment:
# LENDGUARD_API_PORT, LENDGUARD_DEV_API_PORT; default 8000 and 8001).
demo: $(STAMP)
	$(BIN)/lendguard demo $(if $(PORT),--port $(PORT)) $(if $(DEV_PORT),--dev-port $(DEV_PORT))

# A loan book without its group column (ethnicity not collected), its fairness tested with BISG: the
# book with surnames and ZCTAs, the Census tables, the build, a pipeline run (single threshold,
# probability-weighted fairness in the evaluation and the gate). `make bisg-book LOANS=30000
# CANDIDATES=logreg_c1`; a lender's own book: `lendguard import FILE --schema FILE.yml` in place of simulate.
# On the default simulated book the gate refuses the model: its groups differ in income, credit and
# housing, so one threshold for all has a BISG-weighted FPR gap of about 0.14 (limit 0.05), and without
# a group column there are no group thresholds to even it out. SAME_PROFILES=1 simulates groups without
# those differences: the model passes the gate and awaits approval (`lendguard approve`, then `serve`).
bisg-book: $(STAMP)
	$(BIN)/lendguard simulate --proxies --omit-group $(if $(SAME_PROFILES),--same-profiles) --loans $(or $(LOANS),100000)
	$(BIN)/lendguard reference-data load
	$(BIN)/lendguard build
	$(BIN)/lendguard pipeline run $(if $(CANDIDATES),--candidates $(CANDIDATES))

# Bytecode of the installed packages, compiled once per install. Where PYTHONDONTWRITEBYTECODE is set
# nothing writes it, and every Python process the suite starts (the workers, each CLI, server and
# dev-API process, MLflow's requirement probe) compiles mlflow, scikit-learn, dbt, litestar... from
# source again: about 5.5 s of CPU each (9.2 s to import the stack, 3.7 s with bytecode).
$(BYTECODE): $(STAMP)
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	touch $(BYTECODE)

# pytest: two workers, a test module each at a time, in the order tests/conftest.py gives (long ones
# first), not xdist's (most tests first).
test: $(STAMP) $(BYTECODE)
	@command -v chromium >/dev/null || echo "note: no chromium, so the browser test is skipped; install it with: apt-get install -y chromium chromium-driver (.ci/run does)"
	$(BIN)/ruff check .
	$(BIN)/lint-imports  # import layers and cycles: [tool.importlinter] in pyproject.toml
	$(BIN)/mypy  # types: [tool.mypy] in pyproject.toml
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# The inner loop: lint, import layers, types and the tests that need no shared trained deployment, no
# Spark, no server process and no pipeline run (markers slow, e2e, spark; tests/conftest.py marks every
# test of the shared deployment or Spark slow). `make test` (all of them) is what CI runs.
test-quick: $(STAMP) $(BYTECODE)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -m "not slow and not e2e and not spark"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-pin after editing requirements.in (requirements-style: records no download addresses).
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11 --no-header

# Re-pin the Spark engine's packages (requirements-spark.in) against requirements.lock.
lock-spark: $(STAMP)
	$(BIN)/uv pip compile requirements-spark.in -c requirements.lock -o requirements-spark.lock --python-version 3.11 --no-header

# Removes the runtime data (warehouse, snapshots, landing zone, MLflow store) and dbt's output; keeps .venv.
clean:
	rm -rf warehouse/data target logs
