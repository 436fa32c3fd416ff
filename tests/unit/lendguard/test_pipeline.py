"""The pipeline as data (its settings are tested with every other declaration in test_settings)."""

from __future__ import annotations

from lendguard import pipeline


def test_the_stages_in_order_and_only_deploy_prod_waits_for_a_person() -> None:
    assert [stage.name for stage in pipeline.STAGES] == [
        "train", "thresholds", "evaluate", "gate", "deploy-dev", "test-dev", "request-approval", "deploy-prod"]
    assert [stage[0] for stage in pipeline.STAGES if not stage.automatic] == ["deploy-prod"]
