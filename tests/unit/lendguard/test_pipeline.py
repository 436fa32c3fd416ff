"""The pipeline as data (its settings are tested with every other declaration in test_settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lendguard import pipeline
from tests.support.deployment import paths_for


def test_the_stages_in_order_and_only_deploy_prod_waits_for_a_person() -> None:
    assert [stage.name for stage in pipeline.STAGES] == [
        "train", "thresholds", "evaluate", "gate", "deploy-dev", "test-dev", "request-approval", "deploy-prod"]
    assert [stage[0] for stage in pipeline.STAGES if not stage.automatic] == ["deploy-prod"]


@pytest.mark.parametrize("last", ["deploy-prod", "retrain"])
def test_run_until_stops_at_an_automatic_stage_only(last: str, tmp_path: Path) -> None:
    paths = paths_for(tmp_path / "data")
    with pytest.raises(ValueError, match=f"'{last}' is not an automatic stage"):
        pipeline.run_until(paths, last)
    assert pipeline.latest(paths) is None, "no run was started"


def test_a_failed_first_stage_records_the_run_and_leaves_nothing_open(tmp_path: Path) -> None:
    """No loan book: train fails; the run is failed (not left running), so the next one may start."""
    paths = paths_for(tmp_path / "data")
    with pytest.raises(pipeline.StageFailedError, match=r"^stage train failed: "):
        pipeline.run_until(paths, "gate")
    run = pipeline.latest(paths)
    assert run is not None
    assert run.status == pipeline.FAILED
    assert [(entry["stage"], entry["status"]) for entry in run.stages] == [("train", "failed")]
