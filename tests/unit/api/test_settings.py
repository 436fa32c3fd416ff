"""Settings come from the environment, once, and refuse values the API cannot run with."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError


def test_defaults_serve_the_champion_on_port_8000() -> None:
    settings = Settings.from_env({})
    assert (settings.port, settings.model_alias, settings.writer_id) == (8000, "champion", None)
    assert settings.log_max_batch >= 1
    assert settings.log_max_wait_ms >= 0


def test_every_setting_is_read_from_its_variable() -> None:
    settings = Settings.from_env({
        "LENDGUARD_API_HOST": "0.0.0.0",  # noqa: S104 - a value under test, not a bind
        "LENDGUARD_API_PORT": "9001",
        "LENDGUARD_MODEL_ALIAS": "candidate",
        "LENDGUARD_WRITER_ID": "replica-a",
        "LENDGUARD_LOG_MAX_BATCH": "64",
        "LENDGUARD_LOG_MAX_WAIT_MS": "0.5",
        "LENDGUARD_SCORE_MAX_BATCH": "16",
        "LENDGUARD_SCORE_MAX_WAIT_MS": "1",
        "LENDGUARD_MODEL_POLL_SECONDS": "2.5",
    })
    assert settings == Settings("0.0.0.0", 9001, "candidate", "replica-a", 64, 0.5, 16, 1.0, 2.5)  # noqa: S104


def test_the_registry_is_polled_every_ten_seconds_unless_disabled() -> None:
    assert Settings.from_env({}).model_poll_seconds == 10
    assert Settings.from_env({"LENDGUARD_MODEL_POLL_SECONDS": "0"}).model_poll_seconds == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("LENDGUARD_API_PORT", "eighty"), ("LENDGUARD_API_PORT", "0"), ("LENDGUARD_LOG_MAX_BATCH", "0"),
     ("LENDGUARD_LOG_MAX_WAIT_MS", "-1"), ("LENDGUARD_SCORE_MAX_WAIT_MS", "nan"), ("LENDGUARD_MODEL_ALIAS", ""),
     ("LENDGUARD_MODEL_POLL_SECONDS", "-1"), ("LENDGUARD_MODEL_POLL_SECONDS", "nan")],
)
def test_a_bad_value_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({name: value})
