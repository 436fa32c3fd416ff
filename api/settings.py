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
``LENDGUARD_SCORE_MAX_BATCH``      64           most applications scored in one model call
``LENDGUARD_SCORE_MAX_WAIT_MS``    0            longest an application waits for others (0: none)
``LENDGUARD_MODEL_POLL_SECONDS``   10           how often the registry is asked whether the alias
                                                moved (0: never; the model changes on restart)
=================================  ===========  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from warehouse.env import env_number

_Number = TypeVar("_Number", int, float)

ENV_HOST = "LENDGUARD_API_HOST"
ENV_PORT = "LENDGUARD_API_PORT"
ENV_ALIAS = "LENDGUARD_MODEL_ALIAS"
ENV_WRITER_ID = "LENDGUARD_WRITER_ID"
ENV_LOG_MAX_BATCH = "LENDGUARD_LOG_MAX_BATCH"
ENV_LOG_MAX_WAIT_MS = "LENDGUARD_LOG_MAX_WAIT_MS"
ENV_SCORE_MAX_BATCH = "LENDGUARD_SCORE_MAX_BATCH"
ENV_SCORE_MAX_WAIT_MS = "LENDGUARD_SCORE_MAX_WAIT_MS"
ENV_MODEL_POLL_SECONDS = "LENDGUARD_MODEL_POLL_SECONDS"
MAX_POLL_SECONDS = 86_400.0


class SettingsError(ValueError):
    """An environment variable holds a value the API cannot run with."""


@dataclass(frozen=True)
class Settings:
    """How this API process serves: where it listens, which alias, how it batches scoring and its log."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_alias: str = "champion"
    writer_id: str | None = None
    """None: ``warehouse.landing.default_writer_id()`` (host, pid, start time)."""
    log_max_batch: int = 512
    log_max_wait_ms: float = 2.0
    score_max_batch: int = 64
    score_max_wait_ms: float = 0.0
    model_poll_seconds: float = 10.0
    """Seconds between registry checks for a new version behind the alias; 0 disables polling."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1..65535, got {self.port}")
        if not self.model_alias:
            raise SettingsError("model alias must not be empty")
        for name in ("log_max_batch", "score_max_batch"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("log_max_wait_ms", "score_max_wait_ms"):
            if not 0 <= getattr(self, name) < 10_000:
                raise SettingsError(f"{name} must be 0..10000 ms, got {getattr(self, name)}")
        if not 0 <= self.model_poll_seconds <= MAX_POLL_SECONDS:
            raise SettingsError(f"model_poll_seconds must be 0..{MAX_POLL_SECONDS:.0f}, got {self.model_poll_seconds}")

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
            score_max_batch=_number(env, ENV_SCORE_MAX_BATCH, defaults.score_max_batch, int),
            score_max_wait_ms=_number(env, ENV_SCORE_MAX_WAIT_MS, defaults.score_max_wait_ms, float),
            model_poll_seconds=_number(env, ENV_MODEL_POLL_SECONDS, defaults.model_poll_seconds, float),
        )


def _number(env: Mapping[str, str], name: str, default: _Number, kind: type[_Number]) -> _Number:
    return env_number(env, name, default, kind, error=SettingsError)


@cache
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment is read once)."""
    return Settings.from_env()


def redact_uri(uri: str) -> str:
    """A URI fit for a log line: any user name and password removed."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
