"""Every declared setting, checked from its declaration: its default, reading it, and refusing bad values.

The cases are derived from ``warehouse.settings.declarations()`` (type, bounds, choices), so a new
setting is covered the moment it is declared; only the cross-field rules need companions below.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import annotated_types
import pytest
from pydantic import SecretStr

from warehouse.paths import Paths
from warehouse.settings import (
    CONFIG_FILE_VARIABLE,
    ApiSettings,
    Declaration,
    NotifySettings,
    Settings,
    SettingsError,
    declarations,
    load,
    load_settings,
)

DECLARED = declarations()
IDS = [d.variable for d in DECLARED]

COMPANIONS: dict[str, dict[str, str]] = {
    "LENDGUARD_SMTP_HOST": {"LENDGUARD_SMTP_FROM": "a@example.org", "LENDGUARD_SMTP_TO": "b@example.org"},
    "LENDGUARD_SMTP_FROM": {"LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_TO": "b@example.org"},
    "LENDGUARD_SMTP_TO": {"LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_FROM": "a@example.org"},
    "LENDGUARD_SMTP_USER": {"LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_FROM": "a@example.org",
                            "LENDGUARD_SMTP_TO": "b@example.org", "LENDGUARD_SMTP_PASSWORD": "pw"},
    "LENDGUARD_SMTP_PASSWORD": {"LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_FROM": "a@example.org",
                                "LENDGUARD_SMTP_TO": "b@example.org", "LENDGUARD_SMTP_USER": "u"},
    "LENDGUARD_WEBHOOK_TOKEN": {"LENDGUARD_WEBHOOK_URL": "https://hooks.example.org/x"},
}
"""The cross-field rules of NotifySettings: what must be set beside a variable for it to be valid."""

FREE_TEXT = {"LENDGUARD_DATA_DIR", "LENDGUARD_WAREHOUSE", "LENDGUARD_SNAPSHOT", "LENDGUARD_LANDING",
             "MLFLOW_TRACKING_URI", "LENDGUARD_API_HOST", "LENDGUARD_WRITER_ID", "LENDGUARD_API_KEYS_FILE",
             "LENDGUARD_SMTP_HOST", "LENDGUARD_SMTP_USER", "LENDGUARD_SMTP_PASSWORD", "LENDGUARD_WEBHOOK_TOKEN",
             "LENDGUARD_ACTOR", "LENDGUARD_MODEL_ALIAS", "LENDGUARD_MLFLOW_UI_URL",
             "LENDGUARD_SPARK_MASTER"}
"""Settings no non-blank text can make invalid (a blank value means unset)."""


def _kind(declaration: Declaration) -> Any:
    """The declared type without ``None`` and ``Annotated``."""
    kind = declaration.annotation
    if isinstance(kind, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    return kind


def _bounds(declaration: Declaration) -> dict[str, float]:
    found: dict[str, float] = {}
    for rule in declaration.info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(rule, getattr(annotated_types, name.title())):
                found[name] = getattr(rule, name)
    return found


def sample(declaration: Declaration) -> tuple[str, Any]:
    """A valid value other than the default: the variable's text and the value the field must hold."""
    kind, default, bounds = _kind(declaration), declaration.default(), _bounds(declaration)
    name = declaration.field
    if kind is bool:
        return ("no", False) if default else ("yes", True)
    if typing.get_origin(kind) is Literal:
        other = next(choice for choice in typing.get_args(kind) if choice != default)
        return other, other
    if kind in (int, float):
        base = default if default is not None else bounds.get("gt", bounds.get("ge", 0))  # unset by default
        value = kind(base + 1) if kind is int else base + 0.25
        if "le" in bounds and value > bounds["le"]:
            value = kind(bounds["le"])
        return str(value), value
    fixed: dict[Any, tuple[str, Any]] = {
        Path: (f"/srv/lendguard-test/{name}", Path(f"/srv/lendguard-test/{name}")),
        datetime: ("2026-01-01T00:00:00+01:00", datetime(2025, 12, 31, 23, tzinfo=UTC)),
    }
    if kind in fixed:
        return fixed[kind]
    if typing.get_origin(kind) is tuple:
        return " a@example.org, ,b@example.org ", ("a@example.org", "b@example.org")
    text = "https://user:s3cret@example.org/hook" if "url" in name or "uri" in name else "ops@example.org"
    return text, SecretStr(text) if kind is SecretStr else text


def bad_values(declaration: Declaration) -> list[tuple[str, str]]:
    """Values the declaration refuses, each with a word the message must contain (the bound, the choices)."""
    kind, bounds = _kind(declaration), _bounds(declaration)
    found: list[tuple[str, str]] = []
    if kind in (int, float):
        found.append(("soon", "valid"))
        for name, bound in bounds.items():
            step = 1 if kind is int else 0.01
            outside = {"ge": bound - step, "gt": bound, "le": bound + step, "lt": bound}[name]
            found.append((str(kind(outside)), f"{bound:g}"))
    if kind is float:
        found.append(("nan", "finite"))
    if kind is bool:
        found.append(("maybe", "boolean"))
    if kind is datetime:
        found.append(("soon", "datetime"))
    if typing.get_origin(kind) is Literal:
        found.append(("coin_toss", str(typing.get_args(kind)[0])))
    if "url" in declaration.field and declaration.variable not in FREE_TEXT:
        found.append(("ftp://example.org/x", "http(s)"))
    if declaration.field in {"smtp_from", "smtp_to"}:
        found.append(("risk-team", "email"))
    return found


@pytest.mark.parametrize("declaration", DECLARED, ids=IDS)
def test_the_default_is_the_declared_one(declaration: Declaration) -> None:
    settings = load_settings({})
    value = getattr(getattr(settings, declaration.section), declaration.field)
    assert value == declaration.default()
    assert load({declaration.variable: "  "}).settings == settings, "a blank value counts as unset"


@pytest.mark.parametrize("declaration", DECLARED, ids=IDS)
def test_the_variable_is_read_into_its_field(declaration: Declaration) -> None:
    text, expected = sample(declaration)
    assert expected != declaration.default()
    loaded = load({**COMPANIONS.get(declaration.variable, {}), declaration.variable: text})
    value = getattr(getattr(loaded.settings, declaration.section), declaration.field)
    assert value == expected
    assert type(value) is type(expected)
    assert loaded.origin(declaration) == "environment"


@pytest.mark.parametrize("declaration", DECLARED, ids=IDS)
def test_bad_values_are_refused_naming_the_variable_and_the_rule(declaration: Declaration) -> None:
    cases = bad_values(declaration)
    assert bool(cases) != (declaration.variable in FREE_TEXT), "every rule is tested; free text has none"
    for text, rule in cases:
        with pytest.raises(SettingsError, match=f"{declaration.variable}.*{re.escape(rule)}") as refused:
            load_settings({**COMPANIONS.get(declaration.variable, {}), declaration.variable: text})
        assert refused.value.exit_code == 2


def test_every_variable_is_declared_once_and_sections_are_frozen() -> None:
    assert len(set(IDS)) == len(IDS)
    assert all(v.startswith("LENDGUARD_") for v in IDS if v != "MLFLOW_TRACKING_URI")
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.api.port = 1  # type: ignore[misc] # the point: it is refused
    with pytest.raises(ValueError, match="frozen"):
        settings.api = ApiSettings()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_TO": "b@example.org"},
         "LENDGUARD_SMTP_FROM is required when LENDGUARD_SMTP_HOST is set"),
        ({"LENDGUARD_SMTP_TO": "b@example.org"}, "LENDGUARD_SMTP_TO is set but LENDGUARD_SMTP_HOST is not"),
        ({**COMPANIONS["LENDGUARD_SMTP_FROM"], "LENDGUARD_SMTP_FROM": "a@example.org", "LENDGUARD_SMTP_USER": "u"},
         "LENDGUARD_SMTP_PASSWORD is required"),
        ({"LENDGUARD_WEBHOOK_TOKEN": "t"}, "LENDGUARD_WEBHOOK_TOKEN is set but LENDGUARD_WEBHOOK_URL is not"),
    ],
)
def test_half_a_notification_configuration_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_secrets_never_show_in_reprs_or_errors() -> None:
    settings = load_settings({**COMPANIONS["LENDGUARD_SMTP_PASSWORD"], "LENDGUARD_SMTP_PASSWORD": " pass word ",
                              "LENDGUARD_WEBHOOK_URL": "https://hooks.example.org/T0/s3cretpath",
                              "LENDGUARD_WEBHOOK_TOKEN": "tok3n"})
    assert settings.notify.smtp_password is not None
    assert settings.notify.smtp_password.get_secret_value() == " pass word ", "a password keeps its spaces"
    for secret in ("pass word", "s3cretpath", "tok3n"):
        assert secret not in repr(settings)
    with pytest.raises(SettingsError) as refused:
        load_settings({"LENDGUARD_WEBHOOK_URL": "ftp://user:s3cret@hooks.example.org/path"})
    assert "s3cret" not in str(refused.value)
    assert "path" not in str(refused.value)


def test_a_settings_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    file = tmp_path / "lendguard.env"
    file.write_text("LENDGUARD_API_PORT=9001\nLENDGUARD_MODEL_ALIAS=candidate\n# a comment\n")
    loaded = load({CONFIG_FILE_VARIABLE: str(file), "LENDGUARD_MODEL_ALIAS": "challenger"})
    assert (loaded.settings.api.port, loaded.settings.api.model_alias) == (9001, "challenger")
    origins = {d.variable: loaded.origin(d) for d in DECLARED}
    assert (origins["LENDGUARD_API_PORT"], origins["LENDGUARD_MODEL_ALIAS"]) == ("file", "environment")
    assert origins["LENDGUARD_API_HOST"] == "default"

    file.write_text("LENDGUARD_API_PROT=9001\n")
    with pytest.raises(SettingsError, match="unknown settings LENDGUARD_API_PROT"):
        load({CONFIG_FILE_VARIABLE: str(file)})
    with pytest.raises(SettingsError, match=f"{CONFIG_FILE_VARIABLE}=.*no such file"):
        load({CONFIG_FILE_VARIABLE: str(tmp_path / "missing.env")})


def test_paths_derive_from_the_data_dir_unless_set(tmp_path: Path) -> None:
    paths = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path)})
    assert (paths.warehouse, paths.snapshot, paths.landing) == (
        tmp_path / "lendguard.duckdb", tmp_path / "published" / "lendguard.duckdb", tmp_path / "landing")
    assert paths.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    moved = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path), "LENDGUARD_LANDING": str(tmp_path / "elsewhere"),
                            "MLFLOW_TRACKING_URI": "http://mlflow.example:5000"})
    assert (moved.landing, moved.tracking_uri) == (tmp_path / "elsewhere", "http://mlflow.example:5000")
    env = moved.dbt_env()
    assert (env["LENDGUARD_LANDING"], env["LENDGUARD_WAREHOUSE"]) == (str(moved.landing), str(moved.warehouse))
    assert env["LENDGUARD_ENGINE"] == "duckdb", "the engine names dbt's profile target"
    on_spark = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path), "LENDGUARD_ENGINE": "spark"}).dbt_env()
    assert (on_spark["LENDGUARD_ENGINE"], on_spark["LENDGUARD_DATA_DIR"]) == ("spark", str(tmp_path))


def test_sections_built_in_code_are_validated_too() -> None:
    with pytest.raises(ValueError, match="LENDGUARD_SMTP_FROM is required"):
        NotifySettings(smtp_host="mail.example.org", smtp_to=("b@example.org",))
    assert ApiSettings(writer_id="replica-a").writer_id == "replica-a"
