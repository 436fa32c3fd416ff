"""What the README gives operators to copy: the systemd units run real commands with real options and
declared settings, stop no sooner than the server drains, and no link leaves the repository."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest

from api.server import GRACEFUL_SHUTDOWN_SECONDS
from lendguard import cli
from warehouse.settings import PROJECT_DIR, declarations

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
UNITS = {match.group(1): match.group(2) for match in
         re.finditer(r"^# /etc/systemd/system/(\S+)\n(.*?)(?=^# /etc/systemd/system/|^```)", README, re.S | re.M)}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)  # Environment= repeats
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNITS[name])
    return parser


@pytest.mark.parametrize("name", ["lendguard-monitor.service", "lendguard-api.service"])
def test_a_unit_runs_a_real_command_with_declared_settings(name: str) -> None:
    service = unit(name)["Service"]
    program, *args = shlex.split(service["ExecStart"])
    assert program == "/srv/lendguard/.venv/bin/lendguard"
    command = cli.cli.commands[args[0]]
    command.make_context(args[0], args[1:])  # click parses the options as written, or raises
    environment = [line.split("=", 1)[0] for line in re.findall(r"^Environment=(\S+)", UNITS[name], re.M)]
    assert environment
    assert set(environment) <= {d.variable for d in declarations()}, "every variable is a declared setting"


def test_the_api_unit_waits_for_the_drain_and_restarts() -> None:
    service = unit("lendguard-api.service")["Service"]
    assert int(service["TimeoutStopSec"]) > GRACEFUL_SHUTDOWN_SECONDS
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"


def test_no_reference_leaves_the_repository() -> None:
    for path in ("README.md", "requirements.in"):
        text = (PROJECT_DIR / path).read_text(encoding="utf-8")
        assert not re.search(r"\.\./", text), f"{path} points outside the repository"


def test_make_clean_and_the_demo_ports_are_documented() -> None:
    assert "make clean" in README
    assert "make demo PORT=8100 DEV_PORT=8101" in README
