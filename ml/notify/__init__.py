"""Tell people when the system needs them: approval requests (``lendguard pipeline``) and monitoring
alerts (``lendguard monitor``).

Two parts, each replaceable on its own:

- where notifications go is ``warehouse.settings.NotifySettings`` (the ``LENDGUARD_SMTP_*`` and
  ``LENDGUARD_WEBHOOK_*`` settings, declared with every other setting);
- :mod:`ml.notify.messages`: what they say (``Notification``; the approval request's layout is the
  Jinja template ``templates/approval_requested.txt.j2``);
- :mod:`ml.notify.transport`: how they travel, email over SMTP and a JSON webhook (``send``; a
  delivery failure is a ``Delivery(ok=False)``, never an exception: a pipeline must not stop
  because mail is down).
"""

from __future__ import annotations

from ml.notify.messages import (
    KIND_ALERT,
    KIND_APPROVAL_REQUESTED,
    POLICIES,
    Notification,
    ReportReference,
    approval_request,
)
from ml.notify.transport import EMAIL, WEBHOOK, Delivery, send

__all__ = [
    "EMAIL", "KIND_ALERT", "KIND_APPROVAL_REQUESTED", "POLICIES", "WEBHOOK", "Delivery", "Notification",
    "ReportReference", "approval_request", "send",
]
