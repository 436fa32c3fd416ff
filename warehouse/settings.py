"""Every setting of lendguard, declared once: variable, type, default, bounds and a one-line doc.

Why one module: a setting written in several places drifts (two defaults, two boolean parsers, a
variable read twice). Here each is one ``setting(...)`` line in a frozen section; everything else
(``lendguard config``, the README table, the settings tests) is derived from these declarations.

A process reads its settings once, at its edge (:func:`get_settings`), and passes the section a
library needs down as an argument; nothing else reads ``os.environ``. Values come from, in order
of precedence, the environment, then the file named by ``LENDGUARD_CONFIG_FILE`` (``KEY=value``
lines, as a ``.env`` file), then the declared default. A blank value counts as unset.

This module is the warehouse layer's, so every package may import it; it imports none of them.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from warehouse.errors import LendguardError

PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The repository root: holds ``dbt_project.yml`` and ``profiles.yml``."""

CONFIG_FILE_VARIABLE = "LENDGUARD_CONFIG_FILE"
"""Names an optional settings file (``KEY=value`` lines); the environment overrides it."""

TOOL_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
}
"""What the libraries we run must see in their environment: no usage reporting from any of them."""

REGISTRY_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
"""For processes that only read the registry to show it (status, the dashboard, the API's polls):
one retry and a 5 s timeout, not MLflow's default of retrying for minutes when it is down."""


class SettingsError(LendguardError):
    """A setting holds a value lendguard cannot run with; the message names the variable and the rule."""

    exit_code = 2


def setting(
    default: Any = None, *, env: str, doc: str, shown_default: str | None = None, uri: bool = False,
    keep_spaces: bool = False, **rules: Any
) -> Any:
    """Declare one setting: its environment variable ``env``, ``default``, ``rules`` (bounds) and ``doc``.

    ``shown_default`` replaces the default in documentation when the default is computed; ``uri``
    marks a secret URI that is shown with its credentials removed rather than masked whole. Values
    read from the environment are trimmed unless ``keep_spaces`` (a password may contain them).
    """
    extra: dict[str, Any] = {"env": env, "uri": uri, "keep_spaces": keep_spaces}
    if shown_default is not None:
        extra["shown_default"] = shown_default
    if callable(default):
        return Field(default_factory=default, description=doc, json_schema_extra=extra, **rules)
    return Field(default, description=doc, json_schema_extra=extra, **rules)


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _http_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {redact_url(url)!r}")


Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    """A frozen group of settings; built from keywords in tests, from the environment in processes."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class PathSettings(Section):
    """Where everything lives; ``warehouse.paths.Paths`` resolves these into absolute paths."""

    data_dir: Path = setting(PROJECT_DIR / "warehouse" / "data", env="LENDGUARD_DATA_DIR",
                             doc="runtime data: warehouse, snapshots, landing zone, MLflow, state")
    warehouse: Path | None = setting(env="LENDGUARD_WAREHOUSE", shown_default="DATA_DIR/lendguard.duckdb",
                                     doc="the DuckDB file dbt builds (only dbt and the build write it)")
    snapshot: Path | None = setting(env="LENDGUARD_SNAPSHOT", shown_default="DATA_DIR/published/lendguard.duckdb",
                                    doc="the published read-only snapshot every reader opens")
    landing: Path | None = setting(env="LENDGUARD_LANDING", shown_default="DATA_DIR/landing",
                                   doc="the landing zone: immutable Parquet files, one folder per dataset")
    tracking_uri: SecretStr | None = setting(env="MLFLOW_TRACKING_URI",
                                             shown_default="sqlite:///DATA_DIR/mlflow/mlflow.db", uri=True,
                                             doc="MLflow tracking server and model registry (any MLflow URI)")


class EngineSettings(Section):
    """Which engine dbt builds the warehouse on: the embedded DuckDB file, or Apache Spark (dbt-spark)."""

    engine: Literal["duckdb", "spark"] = setting(
        "duckdb", env="LENDGUARD_ENGINE",
        doc="duckdb: the embedded DuckDB file; spark: dbt-spark (profiles.yml target of the same name)")
    spark_master: str = setting("local[2]", env="LENDGUARD_SPARK_MASTER", min_length=1,
                                doc="Spark master of the local session dbt-spark starts (engine spark)")
    spark_port: int = setting(0, env="LENDGUARD_SPARK_PORT", ge=0, le=65_500,
                              doc="first port of the local Spark driver (the block manager takes the next); "
                                  "0: any free port")


class ApiSettings(Section):
    """How one API process serves: where it listens, which alias, batching, log, idempotency, auth, failover."""

    host: str = setting("127.0.0.1", env="LENDGUARD_API_HOST", doc="interface the API binds")
    port: Port = setting(8000, env="LENDGUARD_API_PORT", doc="TCP port of the API")
    model_alias: str = setting("champion", env="LENDGUARD_MODEL_ALIAS", min_length=1,
                               doc="registry alias the API serves")
    writer_id: str | None = setting(env="LENDGUARD_WRITER_ID", shown_default="host-pid-start time",
                                    doc="prediction-log file prefix, unique per replica")
    keep_alive_seconds: int = setting(
        75, env="LENDGUARD_API_KEEP_ALIVE_SECONDS", ge=1, le=3_600,
        doc="seconds an idle client connection stays open: longer than the idle timeout of the clients' "
            "pools and load balancers (often 60 s), so the server never closes one a client is reusing")
    log_max_batch: int = setting(512, env="LENDGUARD_LOG_MAX_BATCH", ge=1,
                                 doc="most rows one prediction-log file holds")
    log_max_wait_ms: float = setting(2.0, env="LENDGUARD_LOG_MAX_WAIT_MS", ge=0, lt=10_000,
                                     doc="longest a log row waits for others to share its file")
    score_max_batch: int = setting(64, env="LENDGUARD_SCORE_MAX_BATCH", ge=1,
                                   doc="most applications scored in one model call")
    score_max_wait_ms: float = setting(0.0, env="LENDGUARD_SCORE_MAX_WAIT_MS", ge=0, lt=10_000,
                                       doc="longest an application waits for others to share a model call")
    model_poll_seconds: float = setting(10.0, env="LENDGUARD_MODEL_POLL_SECONDS", ge=0, le=86_400,
                                        doc="seconds between registry checks for a moved alias (0: never)")
    scoring_engine: Literal["sql", "sklearn"] = setting(
        "sql", env="LENDGUARD_SCORING_ENGINE",
        doc="sql: the version's compiled feature and model SQL; sklearn: its fitted pipeline")
    batch_max_items: int = setting(100, env="LENDGUARD_BATCH_MAX_ITEMS", ge=1,
                                   doc="most applications one POST /v1/score/batch takes")
    idempotency_ttl_seconds: float = setting(86_400.0, env="LENDGUARD_IDEMPOTENCY_TTL_SECONDS", gt=0,
                                             doc="how long an Idempotency-Key is remembered")
    idempotency_max_keys: int = setting(100_000, env="LENDGUARD_IDEMPOTENCY_MAX_KEYS", ge=1,
                                        doc="most idempotency keys remembered (least recently used go first)")
    api_keys_file: Path | None = setting(env="LENDGUARD_API_KEYS_FILE",
                                         doc="API keys file; unset: scoring open, admin routes off")
    require_auth: bool = setting(False, env="LENDGUARD_REQUIRE_AUTH",
                                 doc="true: refuse to start without an API keys file (production)")
    metrics_public: bool = setting(False, env="LENDGUARD_METRICS_PUBLIC",
                                   doc="true: /metrics open without a key (a scraper on a private network); "
                                       "otherwise it needs the read scope")
    failover_fallback: Literal["manual_review", "previous_champion"] = setting(
        "manual_review", env="LENDGUARD_FAILOVER_FALLBACK",
        doc="decisions while failover is set, unless whoever set it named another")
    failover_poll_seconds: float = setting(0.5, env="LENDGUARD_FAILOVER_POLL_SECONDS", ge=0.05, le=60,
                                           doc="seconds between checks of the failover flag file")
    occurred_at_max_skew_seconds: float = setting(
        300.0, env="LENDGUARD_OCCURRED_AT_MAX_SKEW_SECONDS", ge=0, le=86_400,
        doc="an occurred_at later than receipt by more than this is refused (400): clients' clocks drift")
    occurred_at_allowance_days: float = setting(
        90.0, env="LENDGUARD_OCCURRED_AT_ALLOWANCE_DAYS", ge=0, le=3_650,
        doc="an occurred_at earlier than the serving version's registration less this is refused (400)")
    log_proxy_names: bool = setting(
        False, env="LENDGUARD_LOG_PROXY_NAMES",
        doc="true: the prediction log keeps applicants' surnames and first names (BISG proxies); "
            "false: only the areas and the surname's Census evidence, and refused bodies' names withheld")
    occurred_at_horizon: datetime | None = setting(
        env="LENDGUARD_OCCURRED_AT_HORIZON", shown_default="registration less the allowance",
        doc="earliest occurred_at accepted (ISO 8601, UTC if no offset); replaces the default horizon")


def _variable(section: type[Section], field: str) -> str:
    return str(_extra(section.model_fields[field])["env"])


class NotifySettings(Section):
    """Where notifications go: email, a webhook, both or neither."""

    smtp_host: str | None = setting(env="LENDGUARD_SMTP_HOST", doc="SMTP server; set it to enable email")
    smtp_port: Port = setting(25, env="LENDGUARD_SMTP_PORT", doc="SMTP port")
    smtp_from: str | None = setting(env="LENDGUARD_SMTP_FROM", doc="sender address (required with the host)")
    smtp_to: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = setting(
        (), env="LENDGUARD_SMTP_TO", doc="recipients, comma-separated (required with the host)")
    smtp_user: str | None = setting(env="LENDGUARD_SMTP_USER", doc="SMTP login user (then the password is required)")
    smtp_password: SecretStr | None = setting(env="LENDGUARD_SMTP_PASSWORD", keep_spaces=True,
                                              doc="SMTP login password")
    smtp_starttls: bool = setting(False, env="LENDGUARD_SMTP_STARTTLS",
                                  doc="upgrade the SMTP connection with STARTTLS first")
    webhook_url: SecretStr | None = setting(env="LENDGUARD_WEBHOOK_URL",
                                            doc="http(s) URL to POST notifications to as JSON; set it to enable")
    webhook_token: SecretStr | None = setting(env="LENDGUARD_WEBHOOK_TOKEN",
                                              doc="sent to the webhook as Authorization: Bearer TOKEN")
    timeout_seconds: float = setting(10.0, env="LENDGUARD_NOTIFY_TIMEOUT_SECONDS", gt=0,
                                     doc="per connection or request, both channels")

    @model_validator(mode="after")
    def _complete(self) -> NotifySettings:
        """Half a configuration is a mistake, not a choice: say so instead of silently not notifying."""
        name = {field: _variable(NotifySettings, field) for field in NotifySettings.model_fields}
        if self.smtp_host:
            for field in ("smtp_from", "smtp_to"):
                if not getattr(self, field):
                    raise ValueError(f"{name[field]} is required when {name['smtp_host']} is set")
        else:
            for field in ("smtp_from", "smtp_to", "smtp_user"):
                if getattr(self, field):
                    raise ValueError(f"{name[field]} is set but {name['smtp_host']} is not")
        if self.smtp_from and "@" not in self.smtp_from:
            raise ValueError(f"{name['smtp_from']} must be an email address, got {self.smtp_from!r}")
        for address in self.smtp_to:
            if "@" not in address:
                raise ValueError(f"{name['smtp_to']} must be comma-separated email addresses, got {address!r}")
        if bool(self.smtp_user) != bool(self.smtp_password):
            missing = name["smtp_password"] if self.smtp_user else name["smtp_user"]
            raise ValueError(
                f"{missing} is required: SMTP login needs both {name['smtp_user']} and {name['smtp_password']}")
        if self.webhook_url:
            _http_url(name["webhook_url"], self.webhook_url.get_secret_value())
        elif self.webhook_token:
            raise ValueError(f"{name['webhook_token']} is set but {name['webhook_url']} is not")
        return self

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)


def _user_at_host() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class PipelineSettings(Section):
    """The model-delivery pipeline and the monitor: who acts, where the dev and production APIs are."""

    actor: str = setting(_user_at_host, env="LENDGUARD_ACTOR", shown_default="user@host", min_length=1,
                         doc="who is recorded as running pipeline stages and monitor runs (CI servers set it)")
    dev_api_port: Port = setting(8001, env="LENDGUARD_DEV_API_PORT", doc="port of the dev API the pipeline starts")
    dev_max_p99_ms: float | None = setting(env="LENDGUARD_DEV_MAX_P99_MS", gt=0, shown_default="dev_max_p99_ms var",
                                           doc="test-dev's p99 latency limit in ms; unset: dbt_project.yml's "
                                               "dev_max_p99_ms (a CI machine with shared cores sets a looser one)")
    prod_api_url: str | None = setting(env="LENDGUARD_PROD_API_URL",
                                       doc="production API; deploy-prod waits until it serves the approved version")
    prod_switch_timeout_seconds: float = setting(120.0, env="LENDGUARD_PROD_SWITCH_TIMEOUT_SECONDS", gt=0,
                                                 doc="how long deploy-prod waits for the production API to switch")
    approval_url: str | None = setting(env="LENDGUARD_APPROVAL_URL",
                                       doc="where a CI server waits for the approval; put in the approval request")

    @model_validator(mode="after")
    def _urls(self) -> PipelineSettings:
        for field in ("prod_api_url", "approval_url"):
            value = getattr(self, field)
            if value:
                _http_url(_variable(PipelineSettings, field), value)
        return self


class DashboardSettings(Section):
    """The monitoring dashboard's one link to another host."""

    mlflow_ui_url: Annotated[str, BeforeValidator(lambda v: v.strip().rstrip("/") if isinstance(v, str) else v)] = (
        setting("http://127.0.0.1:5000", env="LENDGUARD_MLFLOW_UI_URL", min_length=1,
                doc="the MLflow UI the dashboard links the deployed run to"))


class Settings(BaseSettings):
    """All of lendguard's settings, one frozen section per concern."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Built from keywords only, so a test's ``Settings(...)`` never depends on the machine;
        :func:`load` reads the declared variables (pydantic's own environment source does not know them)."""
        return (init_settings,)

    paths: PathSettings = Field(default_factory=PathSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)


# ----- the declarations, as data -------------------------------------------------------------------------
@dataclass(frozen=True)
class Declaration:
    """One declared setting: ``section.field``, its variable, and what its declaration says."""

    section: str
    field: str
    variable: str
    annotation: Any
    info: FieldInfo

    @property
    def key(self) -> str:
        return f"{self.section}.{self.field}"

    @property
    def doc(self) -> str:
        return self.info.description or ""

    @property
    def secret(self) -> bool:
        return "SecretStr" in str(self.annotation)

    def shown(self, value: Any) -> str:
        """``value`` of this setting as people may see it (secrets masked)."""
        if _extra(self.info)["uri"] and isinstance(value, SecretStr):
            return redact_uri(value.get_secret_value())
        return show(value)

    def default(self) -> Any:
        return self.info.get_default(call_default_factory=True)

    def shown_default(self) -> str:
        """The default as documentation shows it: stable across machines (no absolute paths, no user)."""
        extra = _extra(self.info)
        if "shown_default" in extra:
            return str(extra["shown_default"])
        return show(self.default(), relative=True)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def declarations() -> tuple[Declaration, ...]:
    """Every declared setting, section by section, in declaration order."""
    found = []
    for section, section_field in Settings.model_fields.items():
        model = section_field.annotation
        if not (isinstance(model, type) and issubclass(model, Section)):
            raise TypeError(f"Settings.{section} must be a Section, not {model}")
        found += [Declaration(section, name, str(_extra(info)["env"]), info.annotation, info)
                  for name, info in model.model_fields.items()]
    return tuple(found)


def variable(key: str) -> str:
    """The environment variable of ``section.field`` (for building a child process's environment)."""
    return next(d.variable for d in declarations() if d.key == key)


def show(value: Any, *, relative: bool = False) -> str:
    """A value as people read it: secrets masked; with ``relative``, paths inside the repository relative
    to it (documentation must read the same on every machine)."""
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, Path) and relative and value.is_relative_to(PROJECT_DIR):
        return str(value.relative_to(PROJECT_DIR))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


# ----- reading ---------------------------------------------------------------------------------------------
class DeclaredVariables(PydanticBaseSettingsSource):
    """A settings source: the declared variables found in one mapping (the environment, or a file)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str | None], origin: str) -> None:
        super().__init__(settings_cls)
        self.origin = origin
        # Blank means unset; values are trimmed, except where spaces may be part of the value.
        keep = {d.variable: bool(_extra(d.info)["keep_spaces"]) for d in declarations()}
        self.values = {name: value if keep[name] else value.strip() for name, value in values.items()
                       if name in keep and value is not None and value.strip()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        return None, field_name, False  # __call__ builds the nested sections directly

    def __call__(self) -> dict[str, Any]:
        nested: dict[str, Any] = {}
        for declaration in declarations():
            if declaration.variable in self.values:
                nested.setdefault(declaration.section, {})[declaration.field] = self.values[declaration.variable]
        return nested


@dataclass(frozen=True)
class Loaded:
    """Settings and where each value came from (for ``lendguard config``)."""

    settings: Settings
    environment: DeclaredVariables
    file: DeclaredVariables
    config_file: Path | None

    def origin(self, declaration: Declaration) -> str:
        for source in (self.environment, self.file):
            if declaration.variable in source.values:
                return source.origin
        return "default"


def load(environ: Mapping[str, str] | None = None) -> Loaded:
    """Read and validate every setting from ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    config_file = Path(env[CONFIG_FILE_VARIABLE]) if (env.get(CONFIG_FILE_VARIABLE) or "").strip() else None
    file_values: dict[str, str | None] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"{CONFIG_FILE_VARIABLE}={str(config_file)!r}: no such file")
        file_values = dotenv_values(config_file)
        unknown = sorted(set(file_values) - {d.variable for d in declarations()})
        if unknown:
            raise SettingsError(f"{config_file}: unknown settings {', '.join(unknown)} (see `lendguard config`)")
    environment = DeclaredVariables(Settings, env, "environment")
    file = DeclaredVariables(Settings, file_values, "file")
    values = file()
    for section, fields in environment().items():  # the environment wins over the file
        values.setdefault(section, {}).update(fields)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
    return Loaded(settings, environment, file, config_file)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``environ`` describes (default: this process's environment); SettingsError if invalid."""
    return load(environ).settings


@cache
def get_settings() -> Settings:
    """This process's settings, read once (call it at the process's edge and pass sections down)."""
    return load_settings()


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the variable, its value (masked if secret) and the rule broken."""
    by_location = {(d.section, d.field): d for d in declarations()}
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        declaration = by_location.get(tuple(item["loc"][:2]))  # type: ignore[arg-type] # loc holds str and int
        if declaration is None:
            problems.append(message)
            continue
        value = "**********" if declaration.secret else repr(item["input"])
        problems.append(f"{declaration.variable}={value}: {message}")
    return "invalid settings: " + "; ".join(problems)


# ----- process edges ---------------------------------------------------------------------------------------
def apply_tool_environment(*extra: Mapping[str, str]) -> None:
    """Give the libraries this process runs (MLflow, dbt) what they read from the environment.

    Called once by each process entry (the CLI, the API server), never by library code; a value
    already set wins, so an operator can override any of them.
    """
    for values in (TOOL_ENVIRONMENT, *extra):
        for name, value in values.items():
            os.environ.setdefault(name, value)


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides``, for a child process (dbt, a dev API server)."""
    return {**os.environ, **TOOL_ENVIRONMENT, **overrides}


def redact_uri(uri: str) -> str:
    """A URI fit for a log line: any user name and password removed."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def redact_url(url: str) -> str:
    """Only the origin of ``url``: many webhook URLs carry their secret in the path or query."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<invalid url>"
    suffix = "/…" if parts.path not in {"", "/"} or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{suffix}"
