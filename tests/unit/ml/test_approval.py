"""What an approval needs of the stages before it (the checks over landed records are exercised
end to end in tests/integration/test_audit.py)."""

from __future__ import annotations

from ml.delivery.approval import DEV_STAGES, missing_dev_stages


def test_every_dev_stage_must_have_passed_and_each_missing_one_is_named_in_pipeline_order() -> None:
    assert missing_dev_stages({"deploy-dev": "succeeded", "test-dev": "succeeded", "request-approval": "waiting"}) == []
    assert missing_dev_stages({"deploy-dev": "succeeded", "test-dev": "succeeded",
                               "request-approval": "succeeded"}) == []
    assert missing_dev_stages({}) == [f"{stage} never ran" for stage in DEV_STAGES]
    assert missing_dev_stages({"deploy-dev": "succeeded", "test-dev": "failed"}) == [
        "test-dev failed", "request-approval never ran"]
    assert missing_dev_stages({"deploy-dev": "running", "test-dev": "succeeded", "request-approval": "waiting"}) == [
        "deploy-dev running"]
