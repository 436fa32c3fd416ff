"""``lendguard build``: land what dbt needs, run ``dbt build``, publish the snapshot.

One build at a time (a file lock), so a scheduled monitor and a person can both call it safely.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warehouse import compaction, datasets, landing
from warehouse.dbt import DbtError, DbtRun, run_dbt
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema, simulated_schema
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.publish import publish

log = logging.getLogger(__name__)


class NoLoanBookError(LendguardError):
    """Nothing to build from yet."""


@dataclass(frozen=True)
class BuildResult:
    """A finished build: dbt's run and where the snapshot was published (None if not published)."""

    run: DbtRun
    snapshot: Path | None

    @property
    def ok(self) -> bool:
        return self.run.returncode == 0


def current_loan_book(paths: Paths) -> LoanBookSchema:
    """The contract landed with the newest loan-book snapshot."""
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    if snapshot is None:
        raise NoLoanBookError(
            f"no loan book in {paths.landing / landing.LOANS}: run `lendguard simulate` or `lendguard import`"
        )
    return LoanBookSchema.from_yaml(snapshot / landing.SNAPSHOT_SCHEMA_FILE)


def dbt_vars(loan_book: LoanBookSchema) -> dict[str, object]:
    return {"loan_book": loan_book.dbt_var()}


@contextmanager
def build_lock(paths: Paths) -> Iterator[None]:
    """Serialise builds of one warehouse (waits for a build in progress)."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with (paths.state_dir / "build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


GATE_TAG = "gate"
"""Tests tagged ``gate`` judge a candidate model; they run in the pipeline's gate stage only."""
MONITOR_TAG = "monitor"
"""Tests tagged ``monitor`` fail on monitoring alerts; they run in ``lendguard monitor`` only."""
DELIVERY_SELECT = ["+path:models/delivery"]
"""The delivery marts (``dlv_*``, ``audit_predictions``) and what they are built from: the records the
pipeline stages, approvals and rejections land (through their staging tables and ``eval_*``)."""
DELIVERY_EXCLUDE = ["+int_requests"]
"""... but not the monitoring copy of the prediction log (``audit_predictions`` reads it as built)."""


def build(
    paths: Paths,
    select: list[str] | None = None,
    *,
    exclude: list[str] | None = None,
    gate_version: str | None = None,
    monitor: bool = False,
    full_refresh: bool = False,
) -> BuildResult:
    """Run ``dbt build`` on the landed data and publish the snapshot.

    The gate tests run only when ``gate_version`` names the model version they judge (the
    pipeline's gate stage); every other build leaves them out, so a rejected candidate does not
    fail the builds that monitoring depends on.
    Likewise the monitoring checks (tests tagged ``monitor``, failing on alert rows) run only when
    ``monitor`` is set (``lendguard monitor``); the marts they judge are built either way.

    ``full_refresh`` rebuilds the incremental models from scratch (``dbt build --full-refresh``).
    ``exclude`` leaves dbt nodes out of ``select`` (dbt's ``--exclude``).

    Tests that fail still leave their models built, so the snapshot is published whenever dbt
    ran (exit 0 or 1) and the failures are reported; when dbt could not run (exit 2) nothing is
    published and :class:`DbtError` is raised.
    """
    loan_book = current_loan_book(paths)
    variables = dbt_vars(loan_book)
    landing.ensure_seed(paths.landing, landing.PREDICTION_LOG, prediction_log_schema(loan_book))
    landing.ensure_seed(paths.landing, datasets.REFERENCE_INPUTS, datasets.reference_inputs_schema(loan_book))
    for dataset, schema in datasets.SCHEMAS.items():
        landing.ensure_seed(paths.landing, dataset, schema)
    args = ["build"] + (["--full-refresh"] if full_refresh else []) + (["--select", *select] if select else [])
    excluded = [*(exclude or []), *([] if monitor else [f"tag:{MONITOR_TAG}"])]
    if gate_version is None:
        excluded.append(f"tag:{GATE_TAG}")
    else:
        variables["gate_version"] = gate_version
    if excluded:
        args += ["--exclude", *excluded]
    # Unit tests check the SQL's logic on fixtures written against the simulated book's contract:
    # CI runs them (run_unit_tests); a build judges the data, whatever the lender's contract is.
    args += ["--exclude-resource-type", "unit_test"]
    with build_lock(paths):
        compact_prediction_log(paths)
        run = run_dbt(paths, args, variables)
        if run.returncode >= 2 or (run.returncode == 1 and not run.results):
            raise DbtError(f"dbt build could not run (exit {run.returncode}):\n{_tail(run.output)}")
        if select and not run.results:  # dbt says "Nothing to do" and exits 0
            raise DbtError(f"--select {' '.join(select)} matches no dbt node: nothing was built or published")
        snapshot = publish(paths)
    log.info("published %s", snapshot)
    return BuildResult(run, snapshot)


def publish_delivery(paths: Paths) -> BuildResult:
    """A small build of the delivery marts, published: what a person's decision or a pipeline run
    changed is in the snapshot (dashboard, SQL) at once, without rebuilding features or monitoring."""
    return build(paths, select=DELIVERY_SELECT, exclude=DELIVERY_EXCLUDE)


def run_unit_tests(paths: Paths) -> DbtRun:
    """The dbt unit tests (small fixtures with known answers), under the simulated book's contract
    their fixtures are written for. Needs a built warehouse: dbt reads the parents' column types."""
    return run_dbt(paths, ["test", "--select", "test_type:unit"], dbt_vars(simulated_schema()))


def compact_prediction_log(paths: Paths, *, min_age_seconds: float = 60.0) -> compaction.CompactionResult:
    """Merge the prediction log's small closed files (``warehouse.compaction``); never fails a build.

    Called with the build lock held, so no dbt run has a file vanish under its glob.
    """
    try:
        return compaction.compact(paths.landing / landing.PREDICTION_LOG, min_age_seconds=min_age_seconds)
    except (OSError, ValueError) as exc:  # the log stays as it was: merged next time
        log.warning("prediction-log compaction skipped: %s: %s", type(exc).__name__, exc)
        return compaction.CompactionResult()


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
