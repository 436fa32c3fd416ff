"""Serving settings: one frozen object read from the environment once.

Paths (data dir, landing zone, MLflow tracking URI) are not repeated here: they come from
``warehouse.paths`` so the API, dbt and the ml stages always agree on where things live.

Environment variables (all optional):

=================================  ===========  ===============================================
``LENDGUARD_API_HOST``             127.0.0.1    interface the server binds
``LENDGUARD_API_PORT``             8000         TCP port
``LENDGUARD_MODEL_ALIAS``          champion     registry alias the API serves
``LENDGUARD_WRITER_ID``            (derived)    prediction-log file prefix, unique per replica
``LENDGUARD_LOG_MAX_BATCH``        512          most rows one prediction-log file holds
``LENDGUARD_LOG_MAX_WAIT_MS``      2            longest a row waits for others to share a file
=================================  ===========  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

ENV_HOST = "LENDGUARD_API_HOST"
ENV_PORT = "LENDGUARD_API_PORT"
ENV_ALIAS = "LENDGUARD_MODEL_ALIAS"
ENV_WRITER_ID = "LENDGUARD_WRITER_ID"
ENV_LOG_MAX_BATCH = "LENDGUARD_LOG_MAX_BATCH"
ENV_LOG_MAX_WAIT_MS = "LENDGUARD_LOG_MAX_WAIT_MS"


class SettingsError(ValueError):
    """An environment variable holds a value the API cannot run with."""


@dataclass(frozen=True)
class Settings:
    """How this API process serves: where it listens, which alias, how it batches its log."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_alias: str = "champion"
    writer_id: str | None = None
    """None: ``warehouse.landing.default_writer_id()`` (host, pid, start time)."""
    log_max_batch: int = 512
    log_max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1..65535, got {self.port}")
        if not self.model_alias:
            raise SettingsError("model alias must not be empty")
        if self.log_max_batch < 1:
            raise SettingsError(f"log max batch must be at least 1, got {self.log_max_batch}")
        if self.log_max_wait_ms < 0:
            raise SettingsError(f"log max wait must be >= 0 ms, got {self.log_max_wait_ms}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get(ENV_HOST, defaults.host),
            port=_number(env, ENV_PORT, defaults.port, int),
            model_alias=env.get(ENV_ALIAS, defaults.model_alias),
            writer_id=env.get(ENV_WRITER_ID) or None,
            log_max_batch=_number(env, ENV_LOG_MAX_BATCH, defaults.log_max_batch, int),
            log_max_wait_ms=_number(env, ENV_LOG_MAX_WAIT_MS, defaults.log_max_wait_ms, float),
        )


def _number[T: (int, float)](env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


@cache
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment is read once)."""
    return Settings.from_env()
