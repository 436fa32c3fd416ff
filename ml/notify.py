"""Tell people when the system needs them: approval requests now, monitoring alerts later.

Two channels, configured from the environment, either, both or neither:

- email over SMTP (``smtplib``; plain text, optional STARTTLS and login);
- a webhook that receives the notification as JSON (``httpx``; optional bearer token). The body
  also carries the plain-text report as ``text``, which is what Slack- and Mattermost-style
  incoming webhooks display.

Sending never raises for a delivery failure: a pipeline must not stop because mail is down. The
caller gets one ``Delivery`` per channel and records it (the approval itself does not depend on
any notification arriving; ``lendguard status`` and the approve command still work).

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

import json
import logging
import math
import os
import shlex
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, TypeVar

import httpx

from warehouse.env import env_number

log = logging.getLogger(__name__)

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

EMAIL = "email"
WEBHOOK = "webhook"

KIND_APPROVAL_REQUESTED = "approval_requested"
KIND_ALERT = "alert"

POLICIES = ("group_thresholds", "single_threshold")
"""The two decision policies every approval request compares (DESIGN: "Fairness policy")."""

RETRY_DELAY_SECONDS = 0.5
"""Pause before the one webhook retry: long enough for a restarting receiver, short for a pipeline."""

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
        raise ValueError(f"{ENV_WEBHOOK_URL} must be an http(s) URL with a host, got {_redact_url(url)!r}")


def _redact_url(url: str) -> str:
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


@dataclass(frozen=True)
class Notification:
    """One message for people, rendered for both channels: plain text for mail, JSON for hooks."""

    kind: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("notification kind must not be empty")
        if not self.subject or "\n" in self.subject or "\r" in self.subject:
            raise ValueError(f"notification subject must be one non-empty line, got {self.subject!r}")
        reserved = {"kind", "subject", "text"} & self.payload.keys()
        if reserved:
            raise ValueError(f"payload keys {sorted(reserved)} are reserved for the notification itself")
        try:
            json.dumps(self.payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            # Fail when the message is built (a bug), not when it is sent (which must never raise).
            raise ValueError(f"notification payload is not strict JSON: {exc}") from None

    def webhook_body(self) -> dict[str, Any]:
        """The JSON a webhook receives: kind, subject, the report as ``text``, then the payload."""
        return {"kind": self.kind, "subject": self.subject, "text": self.text, **self.payload}


@dataclass(frozen=True)
class Delivery:
    """What happened on one channel; the caller records it next to the stage that notified."""

    channel: str
    target: str
    ok: bool
    error: str | None = None


def send(notification: Notification, settings: NotifySettings) -> list[Delivery]:
    """Deliver on every configured channel; failures come back as ``ok=False``, never as exceptions."""
    deliveries: list[Delivery] = []
    if settings.email_configured:
        deliveries.append(_send_email(notification, settings))
    if settings.webhook_configured:
        deliveries.append(_post_webhook(notification, settings))
    if not deliveries:
        log.info(
            "notifications are not configured (set %s or %s); %s not sent: %s",
            ENV_SMTP_HOST,
            ENV_WEBHOOK_URL,
            notification.kind,
            notification.subject,
        )
    for delivery in deliveries:
        if delivery.ok:
            log.info("%s notification sent by %s to %s", notification.kind, delivery.channel, delivery.target)
        else:
            log.warning(
                "%s notification NOT delivered by %s to %s: %s",
                notification.kind,
                delivery.channel,
                delivery.target,
                delivery.error,
            )
    return deliveries


def _email_message(notification: Notification, settings: NotifySettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.smtp_to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=(settings.smtp_from or "").rpartition("@")[2] or None)
    message["X-Lendguard-Kind"] = notification.kind  # lets people filter mail by what it is about
    message.set_content(notification.text)  # text/plain; utf-8
    return message


def _send_email(notification: Notification, settings: NotifySettings) -> Delivery:
    target = ", ".join(settings.smtp_to)
    host = settings.smtp_host or ""
    try:
        message = _email_message(notification, settings)
        with smtplib.SMTP(host, settings.smtp_port, timeout=settings.timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        # OSError covers refused connections, timeouts and TLS errors; ValueError bad header values.
        return Delivery(EMAIL, target, ok=False, error=f"{host}:{settings.smtp_port}: {_describe(exc)}")
    if refused:
        # The server accepted some recipients: the others did not get it, and someone must know.
        detail = "; ".join(f"{to}: {code} {reply.decode(errors='replace')}" for to, (code, reply) in refused.items())
        return Delivery(EMAIL, target, ok=False, error=f"recipients refused ({detail}); delivered to the others")
    return Delivery(EMAIL, target, ok=True)


def _post_webhook(notification: Notification, settings: NotifySettings) -> Delivery:
    """POST once, and once more on a connection error or a 5xx.

    Only one retry: a pipeline waits on this. A retry after a read timeout may deliver twice; a
    duplicate message is cheaper than a missed approval request.
    """
    url = settings.webhook_url or ""
    target = _redact_url(url)
    headers = {"User-Agent": "lendguard-notify"}
    if settings.webhook_token:
        headers["Authorization"] = f"Bearer {settings.webhook_token}"
    body = notification.webhook_body()
    error = "not sent"
    with httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False) as client:
        for attempt in (1, 2):
            if attempt == 2:
                log.info("webhook %s failed (%s); retrying once", target, error)
                time.sleep(RETRY_DELAY_SECONDS)
            try:
                response = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                error = _describe(exc)
                continue
            if response.is_success:
                return Delivery(WEBHOOK, target, ok=True)
            snippet = response.text[:200].strip()
            error = f"HTTP {response.status_code}: {snippet}" if snippet else f"HTTP {response.status_code}"
            if not response.is_server_error:
                break  # 3xx/4xx: the request itself is wrong (URL, token); repeating it will not help
    return Delivery(WEBHOOK, target, ok=False, error=error)


def _describe(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


# --------------------------------------------------------------------------- approval request


def approval_request(
    *,
    model_name: str,
    version: str | int,
    run_id: str,
    run_url: str,
    dev_api_url: str,
    gate_passed: bool,
    gate_tests: Sequence[tuple[str, float | None, float | None]],
    auc: float,
    cost_per_applicant: float,
    calibration_error: float,
    fpr_by_policy: Mapping[str, Mapping[str, float]],
    cost_by_policy: Mapping[str, float],
    champion_cost_per_applicant: float | None,
    deployed_policy: str = "group_thresholds",
    answer_url: str | None = None,
) -> Notification:
    """The message that asks a person to approve or reject a candidate version.

    Everything an approver needs to decide without opening another tool (DESIGN: "every approval
    shows the cost and the FPR gap of both" policies), and the exact commands to answer with.

    ``gate_tests`` holds (test name, measured value, limit); ``fpr_by_policy`` maps each of
    ``POLICIES`` to {group: FPR}; ``cost_by_policy`` maps each policy to its expected cost per
    applicant (5·FN + 1·FP over applicants). The champion comparison uses ``cost_per_applicant``
    (the candidate under ``deployed_policy``) against ``champion_cost_per_applicant``, None when
    there is no champion yet. ``answer_url`` is where a CI server waits for the answer (a Jenkins
    input, a GitHub deployment review), when there is one. Non-finite numbers are shown as "n/a"
    and sent as null.
    """
    version = str(version)
    for name, mapping in (("fpr_by_policy", fpr_by_policy), ("cost_by_policy", cost_by_policy)):
        missing = [p for p in POLICIES if p not in mapping]
        if missing:
            raise ValueError(f"{name} must cover both policies {POLICIES}; missing {missing}")
    if deployed_policy not in fpr_by_policy:
        raise ValueError(f"deployed_policy {deployed_policy!r} is not one of {sorted(fpr_by_policy)}")

    policies = [*POLICIES, *(p for p in fpr_by_policy if p not in POLICIES)]
    fpr = {p: {str(g): _number(v) for g, v in fpr_by_policy[p].items()} for p in policies}
    gaps = {p: _gap(fpr[p].values()) for p in policies}
    costs = {p: _number(cost_by_policy.get(p)) for p in policies}
    candidate_cost = _number(cost_per_applicant)
    champion_cost = _number(champion_cost_per_applicant)
    difference = None if candidate_cost is None or champion_cost is None else candidate_cost - champion_cost
    tests = [{"name": str(n), "measured": _number(m), "limit": _number(lim)} for n, m, lim in gate_tests]
    commands = {
        "approve": _answer_command("approve", version),
        "reject": _answer_command("reject", version),
    }
    gate_word = "passed" if gate_passed else "FAILED"
    subject = f"[lendguard] approval needed: {model_name} version {version} (gate {gate_word})"

    payload: dict[str, Any] = {
        "model": {"name": model_name, "version": version},
        "mlflow": {"run_id": run_id, "run_url": run_url},
        "dev_api_url": dev_api_url,
        "gate": {"passed": bool(gate_passed), "tests": tests},
        "metrics": {
            "auc": _number(auc),
            "cost_per_applicant": candidate_cost,
            "calibration_error": _number(calibration_error),
        },
        "deployed_policy": deployed_policy,
        "fpr_by_group": fpr,
        "fpr_gap": gaps,
        "cost_by_policy": costs,
        "champion_comparison": {
            "candidate_cost_per_applicant": candidate_cost,
            "champion_cost_per_applicant": champion_cost,
            "difference": difference,
        },
        "commands": commands,
        "answer_url": answer_url,
    }
    text = _approval_text(
        model_name=model_name,
        version=version,
        run_id=run_id,
        run_url=run_url,
        dev_api_url=dev_api_url,
        gate_word=gate_word,
        tests=tests,
        metrics=payload["metrics"],
        deployed_policy=deployed_policy,
        fpr=fpr,
        gaps=gaps,
        costs=costs,
        champion=payload["champion_comparison"],
        commands=commands,
        answer_url=answer_url,
    )
    return Notification(kind=KIND_APPROVAL_REQUESTED, subject=subject, text=text, payload=payload)


def _answer_command(verb: str, version: str) -> str:
    return f'lendguard {verb} {shlex.quote(version)} --by "YOUR NAME" --note "WHY"'


def _number(value: float | None) -> float | None:
    """A JSON-safe float: None for missing, NaN or infinite values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _gap(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if known else None


def _fmt(value: float | None, digits: int = 4, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _fmt_measure(value: float | None) -> str:
    """Gate values mix rates and counts: whole numbers without decimals, rates with four."""
    if value is not None and value.is_integer() and abs(value) >= 1:
        return f"{value:.0f}"
    return _fmt(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned plain-text columns: the first (names) left, the others (numbers) right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _fields(rows: Sequence[tuple[str, str]]) -> list[str]:
    """Name/value lines with the values lined up."""
    width = max(len(name) for name, _ in rows)
    return [f"  {name.ljust(width)}  {value}" for name, value in rows]


def _approval_text(
    *,
    model_name: str,
    version: str,
    run_id: str,
    run_url: str,
    dev_api_url: str,
    gate_word: str,
    tests: list[dict[str, Any]],
    metrics: dict[str, float | None],
    deployed_policy: str,
    fpr: dict[str, dict[str, float | None]],
    gaps: dict[str, float | None],
    costs: dict[str, float | None],
    champion: dict[str, float | None],
    commands: dict[str, str],
    answer_url: str | None,
) -> str:
    policies = list(fpr)
    groups = sorted({g for by_group in fpr.values() for g in by_group})
    headings = [f"{p} (deployed)" if p == deployed_policy else p for p in policies]
    fpr_rows = [[g, *(_fmt(fpr[p].get(g)) for p in policies)] for g in groups]
    fpr_rows.append(["gap (max - min)", *(_fmt(gaps[p]) for p in policies)])
    fpr_rows.append(["cost per applicant", *(_fmt(costs[p]) for p in policies)])

    difference = champion["difference"]
    if champion["champion_cost_per_applicant"] is None:
        verdict = "no champion yet: this would be the first production model"
    elif difference is not None and difference < 0:
        verdict = "the candidate is cheaper"
    elif difference is not None and difference > 0:
        verdict = "the candidate is MORE expensive"
    else:
        verdict = "the same cost"

    lines = [
        f"{model_name} version {version} passed the automated stages and waits for a human decision."
        if gate_word == "passed"
        else f"{model_name} version {version} is waiting for a decision, but its gate FAILED.",
        "Nothing reaches production until someone approves it.",
        "",
        *_fields(
            [
                ("model", f"{model_name} version {version}"),
                ("MLflow run", run_id),
                ("run link", run_url),
                ("dev API", dev_api_url),
            ],
        ),
        "",
        f"Gate: {gate_word}",
        *_table(
            ["test", "measured", "limit"],
            [[t["name"], _fmt_measure(t["measured"]), _fmt_measure(t["limit"])] for t in tests],
        ),
        "",
        "Candidate metrics (held-out test split)",
        *_table(
            ["metric", "value"],
            [
                ["AUC", _fmt(metrics["auc"])],
                ["cost per applicant", _fmt(metrics["cost_per_applicant"])],
                ["calibration error", _fmt(metrics["calibration_error"])],
            ],
        ),
        "",
        "False-positive rate by group (share of repaid loans sent to manual review), per policy",
        *_table(["group", *headings], fpr_rows),
        "",
        "Cost per applicant against the current champion (5 x FN + 1 x FP)",
        *_table(
            ["", "per applicant"],
            [
                ["candidate", _fmt(champion["candidate_cost_per_applicant"])],
                ["champion", _fmt(champion["champion_cost_per_applicant"])],
                ["difference", _fmt(difference, signed=True)],
            ],
        ),
        f"  ({verdict})",
        "",
        *([f"Answer in CI (it is waiting there): {answer_url}", ""] if answer_url else []),
        "To approve (records who, when and why, then deploys to production):",
        f"  {commands['approve']}",
        "To reject:",
        f"  {commands['reject']}",
        "",
    ]
    return "\n".join(lines)
