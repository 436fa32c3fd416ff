"""Tell people when the system needs them: approval requests (``lendguard pipeline``) and monitoring
alerts (``lendguard monitor``).

Three parts, each replaceable on its own:

- :mod:`ml.notify.settings`: where notifications go (``NotifySettings``, validated, every error
  naming its ``LENDGUARD_SMTP_*`` / ``LENDGUARD_WEBHOOK_*`` variable);
- :mod:`ml.notify.messages`: what they say (``Notification``; the approval request's layout is the
  Jinja template ``templates/approval_requested.txt.j2``);
- :mod:`ml.notify.transport`: how they travel, email over SMTP and a JSON webhook (``send``; a
  delivery failure is a ``Delivery(ok=False)``, never an exception: a pipeline must not stop
  because mail is down).
"""

from __future__ import annotations

from ml.notify.messages import KIND_ALERT, KIND_APPROVAL_REQUESTED, POLICIES, Notification, approval_request
from ml.notify.settings import (
    ENV_SMTP_FROM,
    ENV_SMTP_HOST,
    ENV_SMTP_PASSWORD,
    ENV_SMTP_PORT,
    ENV_SMTP_STARTTLS,
    ENV_SMTP_TO,
    ENV_SMTP_USER,
    ENV_TIMEOUT,
    ENV_WEBHOOK_TOKEN,
    ENV_WEBHOOK_URL,
    NotifySettings,
)
from ml.notify.transport import EMAIL, WEBHOOK, Delivery, send

__all__ = [
    "EMAIL", "ENV_SMTP_FROM", "ENV_SMTP_HOST", "ENV_SMTP_PASSWORD", "ENV_SMTP_PORT", "ENV_SMTP_STARTTLS",
    "ENV_SMTP_TO", "ENV_SMTP_USER", "ENV_TIMEOUT", "ENV_WEBHOOK_TOKEN", "ENV_WEBHOOK_URL", "KIND_ALERT",
    "KIND_APPROVAL_REQUESTED", "POLICIES", "WEBHOOK", "Delivery", "Notification", "NotifySettings",
    "approval_request", "send",
]
