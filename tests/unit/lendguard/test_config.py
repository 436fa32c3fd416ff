"""``lendguard config`` and the README's settings table, both derived from the declarations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from lendguard.config import (
    README,
    README_BEGIN,
    README_END,
    config_table,
    effective_settings,
    readme_block,
    readme_with_settings,
)
from warehouse.settings import CONFIG_FILE_VARIABLE, PROJECT_DIR, declarations, load


def test_the_readme_settings_table_is_the_one_the_declarations_render() -> None:
    text = README.read_text(encoding="utf-8")
    assert README_BEGIN in text, f"README.md lost its settings block ({README_BEGIN})"
    block = text[text.index(README_BEGIN):text.index(README_END) + len(README_END)]
    assert block == readme_block(), (
        "README.md's settings table differs from warehouse/settings.py: run `python -m lendguard.config --readme`")
    for declaration in declarations():
        assert f"`{declaration.variable}`" in block
    assert readme_with_settings(text) == text


def _config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process (settings are read once per process)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LENDGUARD_")}
    return subprocess.run([sys.executable, "-m", "lendguard.cli", "config", *args], capture_output=True, text=True,
                          env={**environ, **env, "COLUMNS": "250"}, cwd=PROJECT_DIR, timeout=120, check=False)


def test_config_shows_every_setting_its_source_and_masks_secrets(tmp_path: Path) -> None:
    file = tmp_path / "lendguard.env"
    file.write_text("LENDGUARD_API_PORT=9001\nLENDGUARD_WEBHOOK_TOKEN=tok3n-from-file\n")
    result = _config({
        CONFIG_FILE_VARIABLE: str(file),
        "LENDGUARD_WEBHOOK_URL": "https://hooks.example.org/services/T000/s3cret-path",
        "MLFLOW_TRACKING_URI": "https://alice:pa55word@mlflow.example.org",
        "LENDGUARD_MODEL_ALIAS": "candidate",
    }, "--json")
    assert result.returncode == 0, result.stderr
    for secret in ("tok3n-from-file", "s3cret-path", "pa55word"):
        assert secret not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["config_file"] == str(file)
    rows = {row["variable"]: row for row in shown["settings"]}
    assert list(rows) == [d.variable for d in declarations()]
    assert (rows["LENDGUARD_API_PORT"]["value"], rows["LENDGUARD_API_PORT"]["source"]) == ("9001", "file")
    assert (rows["LENDGUARD_MODEL_ALIAS"]["value"], rows["LENDGUARD_MODEL_ALIAS"]["source"]) == (
        "candidate", "environment")
    assert (rows["LENDGUARD_API_HOST"]["value"], rows["LENDGUARD_API_HOST"]["source"]) == ("127.0.0.1", "default")
    assert rows["LENDGUARD_WEBHOOK_TOKEN"]["value"] == "**********"
    assert rows["LENDGUARD_WEBHOOK_TOKEN"]["source"] == "file"
    assert rows["LENDGUARD_WEBHOOK_URL"]["value"] == "**********"
    assert rows["MLFLOW_TRACKING_URI"]["value"] == "https://***@mlflow.example.org"
    assert rows["LENDGUARD_API_PORT"]["setting"] == "api.port"
    assert rows["LENDGUARD_API_PORT"]["doc"] == "TCP port of the API"

    text = _config({"LENDGUARD_SMTP_PASSWORD": "pw-secret", "LENDGUARD_SMTP_USER": "u",
                    "LENDGUARD_SMTP_HOST": "mail.example.org", "LENDGUARD_SMTP_FROM": "a@example.org",
                    "LENDGUARD_SMTP_TO": "b@example.org"})
    assert text.returncode == 0, text.stderr
    assert "pw-secret" not in text.stdout
    assert "notify.smtp_password" in text.stdout
    assert "LENDGUARD_SMTP_PASSWORD" in text.stdout


def test_an_invalid_setting_stops_the_command_with_exit_code_2() -> None:
    result = _config({"LENDGUARD_API_PORT": "70000"})
    assert result.returncode == 2
    assert "LENDGUARD_API_PORT='70000'" in result.stderr
    assert "65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_prints_values_as_data_not_markup() -> None:
    loaded = load({"LENDGUARD_DATA_DIR": "/srv/[bold]lend[/bold]guard", "LENDGUARD_ACTOR": "ops [team]"})
    console = Console(record=True, width=400)
    console.print(config_table(effective_settings(loaded), None))
    text = console.export_text()
    assert "/srv/[bold]lend[/bold]guard" in text
    assert "ops [team]" in text
