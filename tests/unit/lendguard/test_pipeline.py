"""The pipeline as data, and what a deployment's environment tells it."""

from __future__ import annotations

import pytest

from lendguard import pipeline
from lendguard.pipeline import PipelineSettings, PipelineSettingsError


def test_the_stages_in_order_and_only_deploy_prod_waits_for_a_person() -> None:
    assert [stage.name for stage in pipeline.STAGES] == [
        "train", "thresholds", "evaluate", "gate", "deploy-dev", "test-dev", "request-approval", "deploy-prod"]
    assert [stage[0] for stage in pipeline.STAGES if not stage.automatic] == ["deploy-prod"]


def test_settings_from_the_environment() -> None:
    settings = PipelineSettings.from_env({
        "LENDGUARD_ACTOR": "ci-runner", "LENDGUARD_DEV_API_PORT": "8101", "LENDGUARD_DEV_MAX_P99_MS": "2500",
        "LENDGUARD_PROD_API_URL": "http://prod:8000", "LENDGUARD_PROD_SWITCH_TIMEOUT_SECONDS": "30",
    })
    assert settings == PipelineSettings(actor="ci-runner", dev_api_port=8101, dev_max_p99_ms=2500.0,
                                        prod_api_url="http://prod:8000", prod_switch_timeout_seconds=30.0)
    assert settings.who() == "ci-runner"


def test_unset_or_blank_settings_keep_their_defaults() -> None:
    settings = PipelineSettings.from_env({"LENDGUARD_ACTOR": " ", "LENDGUARD_DEV_MAX_P99_MS": ""})
    assert settings == PipelineSettings()
    assert settings.dev_max_p99_ms is None, "the dev tests then apply dbt_project.yml's dev_max_p99_ms"
    assert "@" in settings.who(), "user@host"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LENDGUARD_DEV_MAX_P99_MS", "0", "LENDGUARD_DEV_MAX_P99_MS=0 must be a positive number of ms"),
    ("LENDGUARD_DEV_MAX_P99_MS", "fast", "LENDGUARD_DEV_MAX_P99_MS='fast' is not a valid float"),
    ("LENDGUARD_DEV_API_PORT", "80o1", "LENDGUARD_DEV_API_PORT='80o1' is not a valid int"),
])
def test_a_bad_setting_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(PipelineSettingsError, match=f"^{message}$"):
        PipelineSettings.from_env({name: value})
