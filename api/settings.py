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
``LENDGUARD_SCORING_ENGINE``       sql          ``sql``: the version's compiled feature + model SQL
                                                (as batch scoring); ``sklearn``: its pipeline
``LENDGUARD_BATCH_MAX_ITEMS``      100          most applications one ``POST /v1/score/batch`` takes
``LENDGUARD_IDEMPOTENCY_TTL_SECONDS`` 86400     how long an ``Idempotency-Key`` is remembered
``LENDGUARD_IDEMPOTENCY_MAX_KEYS`` 100000       most keys remembered (least recently used go first)
``LENDGUARD_API_KEYS_FILE``        (none)       API keys (name, scopes, SHA-256); none: scoring
                                                open, admin routes off (see ``api.auth``)
``LENDGUARD_REQUIRE_AUTH``         false        true: refuse to start without a keys file
``LENDGUARD_METRICS_PUBLIC``       false        true: ``/metrics`` open without a key (a scraper on a
                                                private network); otherwise it needs ``read``
``LENDGUARD_FAILOVER_FALLBACK``    manual_review  fallback while failover is set, unless its
                                                setter names one (or ``previous_champion``)
``LENDGUARD_FAILOVER_POLL_SECONDS`` 0.5         how often the failover flag file is checked
=================================  ===========  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
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
ENV_SCORING_ENGINE = "LENDGUARD_SCORING_ENGINE"
SCORING_ENGINES = ("sql", "sklearn")
ENV_BATCH_MAX_ITEMS = "LENDGUARD_BATCH_MAX_ITEMS"
ENV_IDEMPOTENCY_TTL_SECONDS = "LENDGUARD_IDEMPOTENCY_TTL_SECONDS"
ENV_IDEMPOTENCY_MAX_KEYS = "LENDGUARD_IDEMPOTENCY_MAX_KEYS"
ENV_API_KEYS_FILE = "LENDGUARD_API_KEYS_FILE"
ENV_REQUIRE_AUTH = "LENDGUARD_REQUIRE_AUTH"
ENV_METRICS_PUBLIC = "LENDGUARD_METRICS_PUBLIC"
ENV_FAILOVER_FALLBACK = "LENDGUARD_FAILOVER_FALLBACK"
ENV_FAILOVER_POLL_SECONDS = "LENDGUARD_FAILOVER_POLL_SECONDS"
FAILOVER_FALLBACKS = ("manual_review", "previous_champion")
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
    scoring_engine: str = "sql"
    """``sql``: the compiled artifact (``ml.scoring``); ``sklearn``: the fitted pipeline, same features."""
    batch_max_items: int = 100
    idempotency_ttl_seconds: float = 86_400.0
    idempotency_max_keys: int = 100_000
    api_keys_file: Path | None = None
    """None: no keys, scoring open and admin routes disabled (see ``api.auth``)."""
    require_auth: bool = False
    metrics_public: bool = False
    """True: ``/metrics`` needs no key even with auth on (see ``api.auth``)."""
    failover_fallback: str = "manual_review"
    """The fallback applied while failover is set, unless whoever set it named another."""
    failover_poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1..65535, got {self.port}")
        if not self.model_alias:
            raise SettingsError("model alias must not be empty")
        for name in ("log_max_batch", "score_max_batch", "batch_max_items", "idempotency_max_keys"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("log_max_wait_ms", "score_max_wait_ms"):
            if not 0 <= getattr(self, name) < 10_000:
                raise SettingsError(f"{name} must be 0..10000 ms, got {getattr(self, name)}")
        if self.scoring_engine not in SCORING_ENGINES:
            raise SettingsError(f"scoring engine must be one of {list(SCORING_ENGINES)}, got {self.scoring_engine!r}")
        if not 0 <= self.model_poll_seconds <= MAX_POLL_SECONDS:
            raise SettingsError(f"model_poll_seconds must be 0..{MAX_POLL_SECONDS:.0f}, got {self.model_poll_seconds}")
        if self.idempotency_ttl_seconds <= 0:
            raise SettingsError(f"idempotency_ttl_seconds must be positive, got {self.idempotency_ttl_seconds}")
        if self.failover_fallback not in FAILOVER_FALLBACKS:
            raise SettingsError(
                f"failover fallback must be one of {list(FAILOVER_FALLBACKS)}, got {self.failover_fallback!r}")
        if not 0.05 <= self.failover_poll_seconds <= 60:
            raise SettingsError(f"failover_poll_seconds must be 0.05..60, got {self.failover_poll_seconds}")

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
            scoring_engine=env.get(ENV_SCORING_ENGINE, defaults.scoring_engine),
            batch_max_items=_number(env, ENV_BATCH_MAX_ITEMS, defaults.batch_max_items, int),
            idempotency_ttl_seconds=_number(
                env, ENV_IDEMPOTENCY_TTL_SECONDS, defaults.idempotency_ttl_seconds, float),
            idempotency_max_keys=_number(env, ENV_IDEMPOTENCY_MAX_KEYS, defaults.idempotency_max_keys, int),
            api_keys_file=Path(env[ENV_API_KEYS_FILE]) if (env.get(ENV_API_KEYS_FILE) or "").strip() else None,
            require_auth=_flag(env, ENV_REQUIRE_AUTH),
            metrics_public=_flag(env, ENV_METRICS_PUBLIC),
            failover_fallback=(env.get(ENV_FAILOVER_FALLBACK) or "").strip() or defaults.failover_fallback,
            failover_poll_seconds=_number(env, ENV_FAILOVER_POLL_SECONDS, defaults.failover_poll_seconds, float),
        )


def _number(env: Mapping[str, str], name: str, default: _Number, kind: type[_Number]) -> _Number:
    return env_number(env, name, default, kind, error=SettingsError)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise SettingsError(f"{name}={raw!r} is not a boolean (true or false)")


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
