"""How notifications travel: email over SMTP (``smtplib``; plain text, optional STARTTLS and login)
and a webhook that receives the notification as JSON (``httpx``; optional bearer token). The body
also carries the plain-text report as ``text``, which is what Slack- and Mattermost-style incoming
webhooks display.

Sending never raises for a delivery failure: a pipeline must not stop because mail is down. The
caller gets one ``Delivery`` per channel and records it (the approval itself does not depend on
any notification arriving; ``lendguard status`` and the approve command still work).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from ml.notify.messages import Notification
from warehouse.settings import NotifySettings, redact_url, variable

log = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"

RETRY_DELAY_SECONDS = 0.5
"""Pause before the one webhook retry: long enough for a restarting receiver, short for a pipeline."""


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
