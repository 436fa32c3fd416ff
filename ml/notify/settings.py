"""Where notifications go: email over SMTP, a webhook, either, both or neither.

Environment variables (all optional; an empty value counts as unset):

======================================  =========  ==============================================
``LENDGUARD_SMTP_HOST``                            SMTP server; set it to enable email
``LENDGUARD_SMTP_PORT``                 25         SMTP port
``LENDGUARD_SMTP_FROM``                            sender address (required with the host)
``LENDGUARD_SMTP_TO``                              recipients, comma-separated (required with the host)
``LENDGUARD_SMTP_USER``                            login user (then the password is required)
``LENDGUARD_SMTP_PASSWORD``                        login password
``LENDGUARD_SMTP_STARTTLS``             false      upgrade the connection with STARTTLS first
``LENDGUARD_WEBHOOK_URL``                          http(s) URL to POST JSON to; set it to enable
``LENDGUARD_WEBHOOK_TOKEN``                        sent as ``Authorization: Bearer <token>``
``LENDGUARD_NOTIFY_TIMEOUT_SECONDS``    10         per connection / request, both channels
======================================  =========  ==============================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from warehouse.env import env_number

_Number = TypeVar("_Number", int, float)

ENV_SMTP_HOST = "LENDGUARD_SMTP_HOST"
ENV_SMTP_PORT = "LENDGUARD_SMTP_PORT"
ENV_SMTP_FROM = "LENDGUARD_SMTP_FROM"
ENV_SMTP_TO = "LENDGUARD_SMTP_TO"
ENV_SMTP_USER = "LENDGUARD_SMTP_USER"
ENV_SMTP_PASSWORD = "LENDGUARD_SMTP_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_SMTP_STARTTLS = "LENDGUARD_SMTP_STARTTLS"
ENV_WEBHOOK_URL = "LENDGUARD_WEBHOOK_URL"
ENV_WEBHOOK_TOKEN = "LENDGUARD_WEBHOOK_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_TIMEOUT = "LENDGUARD_NOTIFY_TIMEOUT_SECONDS"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go. Validated on construction; errors name the environment variable."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    webhook_url: str | None = None
    webhook_token: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.smtp_port < 65536:
            raise ValueError(f"{ENV_SMTP_PORT} must be 1..65535, got {self.smtp_port}")
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError(f"{ENV_TIMEOUT} must be a positive number of seconds, got {self.timeout_seconds}")
        self._check_email()
        if self.webhook_url:
            _check_webhook_url(self.webhook_url)
        elif self.webhook_token:
            raise ValueError(f"{ENV_WEBHOOK_TOKEN} is set but {ENV_WEBHOOK_URL} is not")

    def _check_email(self) -> None:
        parts = {ENV_SMTP_FROM: self.smtp_from, ENV_SMTP_TO: self.smtp_to}
        if self.smtp_host:
            for name, value in parts.items():
                if not value:
                    raise ValueError(f"{name} is required when {ENV_SMTP_HOST} is set")
        else:
            # Half a configuration is a mistake, not a choice: say so instead of silently not mailing.
            for name, value in {**parts, ENV_SMTP_USER: self.smtp_user}.items():
                if value:
                    raise ValueError(f"{name} is set but {ENV_SMTP_HOST} is not")
        if self.smtp_from and "@" not in self.smtp_from:
            raise ValueError(f"{ENV_SMTP_FROM} must be an email address, got {self.smtp_from!r}")
        for address in self.smtp_to:
            if "@" not in address:
                raise ValueError(f"{ENV_SMTP_TO} must be comma-separated email addresses, got {address!r}")
        if bool(self.smtp_user) != bool(self.smtp_password):
            missing = ENV_SMTP_PASSWORD if self.smtp_user else ENV_SMTP_USER
            raise ValueError(f"{missing} is required: SMTP login needs both {ENV_SMTP_USER} and {ENV_SMTP_PASSWORD}")

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifySettings:
        """Read the ``LENDGUARD_SMTP_*``, ``LENDGUARD_WEBHOOK_*`` and timeout variables."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        recipients = tuple(a.strip() for a in (text(ENV_SMTP_TO) or "").split(",") if a.strip())
        return cls(
            smtp_host=text(ENV_SMTP_HOST),
            smtp_port=_parse(env, ENV_SMTP_PORT, 25, int),
            smtp_from=text(ENV_SMTP_FROM),
            smtp_to=recipients,
            smtp_user=text(ENV_SMTP_USER),
            # Passwords may legitimately start or end with spaces: only an empty value means unset.
            smtp_password=env.get(ENV_SMTP_PASSWORD) or None,
            smtp_starttls=_parse_bool(env, ENV_SMTP_STARTTLS, default=False),
            webhook_url=text(ENV_WEBHOOK_URL),
            webhook_token=text(ENV_WEBHOOK_TOKEN),
            timeout_seconds=_parse(env, ENV_TIMEOUT, 10.0, float),
        )


def _parse(env: Mapping[str, str], name: str, default: _Number, kind: type[_Number]) -> _Number:
    return env_number(env, name, default, kind)


def _parse_bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def _check_webhook_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{ENV_WEBHOOK_URL} is not a valid URL: {exc}") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(f"{ENV_WEBHOOK_URL} must be an http(s) URL with a host, got {redact_url(url)!r}")


def redact_url(url: str) -> str:
    """The URL without what may be secret (user info, query, and the path of hook URLs like Slack's).

    Deliveries are recorded in the warehouse and logged; many webhook URLs carry their secret in
    the path, so only the origin is kept.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    suffix = "/…" if parsed.path not in {"", "/"} or parsed.query else ""
    return f"{parsed.scheme}://{parsed.host}{port}{suffix}"
