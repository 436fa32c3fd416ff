"""The model-delivery stages: what each one computes, one module per stage.

    training → thresholds → evaluation (+ register) → gate → dev_tests → approval → deploy_prod

Each stage reads what the previous one logged to the MLflow run (or registered version), does
its work, logs its own outputs there and lands rows for the warehouse, so any version traces back
through its thresholds, evaluation, gate checks and approval to the training run's code commit,
data snapshot and parameters. The computations are pure functions beside the I/O that feeds them;
running the stages in order, recording each run and managing the dev API's process is
``lendguard.pipeline``'s job (this package imports neither ``api`` nor ``lendguard``).

This module holds the names the stages share: the registry aliases and the gate's verdicts.
"""

from __future__ import annotations

from datetime import UTC, datetime

CANDIDATE = "candidate"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
GATE_PASSED = "passed"
GATE_FAILED = "failed"


def utc_now() -> datetime:
    """Naive UTC, as the landing datasets store timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)
