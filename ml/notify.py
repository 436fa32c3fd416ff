"""Tell people when the system needs them: approval requests now, monitoring alerts later.

Two channels, either, both or neither:

- email over SMTP (``smtplib``; plain text, optional STARTTLS and login);
- a webhook that receives the notification as JSON (``httpx``; optional bearer token). The body
  also carries the plain-text report as ``text``, which is what Slack- and Mattermost-style
  incoming webhooks display.

Sending never raises for a delivery failure: a pipeline must not stop because mail is down. The
caller gets one ``Delivery`` per channel and records it (the approval itself does not depend on
any notification arriving; ``lendguard status`` and the approve command still work).

Where notifications go is ``warehouse.settings.NotifySettings`` (the ``LENDGUARD_SMTP_*`` and
``LENDGUARD_WEBHOOK_*`` settings); the caller passes it in.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from warehouse.settings import NotifySettings, redact_url, variable

log = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"

KIND_APPROVAL_REQUESTED = "approval_requested"
KIND_ALERT = "alert"

POLICIES = ("group_thresholds", "single_threshold")
"""The two decision policies every approval request compares (DESIGN: "Fairness policy")."""

RETRY_DELAY_SECONDS = 0.5
"""Pause before the one webhook retry: long enough for a restarting receiver, short for a pipeline."""


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
            variable("notify.smtp_host"),
            variable("notify.webhook_url"),
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
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
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
    url = settings.webhook_url.get_secret_value() if settings.webhook_url else ""
    target = redact_url(url)
    headers = {"User-Agent": "lendguard-notify"}
    if settings.webhook_token:
        headers["Authorization"] = f"Bearer {settings.webhook_token.get_secret_value()}"
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
