"""Notifications against real local servers: an SMTP server (aiosmtpd) and an HTTP receiver."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ml.notify import Delivery, Notification, approval_request, send, transport
from tests.support.servers import free_port
from warehouse.settings import NotifySettings, SettingsError, load_settings

FPR = {
    "group_thresholds": {"asian": 0.0999, "black": 0.1012, "hispanic": 0.1005, "white": 0.1010},
    "single_threshold": {"asian": 0.0700, "black": 0.1600, "hispanic": 0.1200, "white": 0.0900},
}
COST = {"group_thresholds": 0.4123, "single_threshold": 0.4050}


def candidate(**overrides: Any) -> Notification:
    values: dict[str, Any] = {
        "model_name": "lendguard",
        "version": "7",
        "run_id": "0a1b2c3d4e5f",
        "run_url": "http://127.0.0.1:5000/#/experiments/1/runs/0a1b2c3d4e5f",
        "dev_api_url": "http://127.0.0.1:8001",
        "gate_passed": True,
        "gate_tests": [("fpr_gap_within_limit", 0.0013, 0.05), ("min_group_size", 312, 200)],
        "auc": 0.8123,
        "cost_per_applicant": 0.4123,
        "calibration_error": 0.0131,
        "fpr_by_policy": FPR,
        "cost_by_policy": COST,
        "champion_cost_per_applicant": 0.4200,
    }
    return approval_request(**{**values, **overrides})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; requests to the local receiver must go straight to it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- settings
def from_environment(environ: dict[str, str]) -> NotifySettings:
    return load_settings(environ).notify



def test_settings_read_every_variable() -> None:
    settings = from_environment(
        {
            "LENDGUARD_SMTP_HOST": "mail.example.org",
            "LENDGUARD_SMTP_PORT": "587",
            "LENDGUARD_SMTP_FROM": "lendguard@example.org",
            "LENDGUARD_SMTP_TO": " risk@example.org, , audit@example.org ",
            "LENDGUARD_SMTP_USER": "lendguard",
            "LENDGUARD_SMTP_PASSWORD": "s3cret",
            "LENDGUARD_SMTP_STARTTLS": "yes",
            "LENDGUARD_WEBHOOK_URL": "https://hooks.example.org/services/T000/B000/XXXX",
            "LENDGUARD_WEBHOOK_TOKEN": "tok3n",
            "LENDGUARD_NOTIFY_TIMEOUT_SECONDS": "2.5",
        }
    )
    assert settings == NotifySettings(
        smtp_host="mail.example.org",
        smtp_port=587,
        smtp_from="lendguard@example.org",
        smtp_to=("risk@example.org", "audit@example.org"),
        smtp_user="lendguard",
        smtp_password="s3cret",  # noqa: S106 - test credentials
        smtp_starttls=True,
        webhook_url="https://hooks.example.org/services/T000/B000/XXXX",
        webhook_token="tok3n",  # noqa: S106
        timeout_seconds=2.5,
    )
    assert "s3cret" not in repr(settings)
    assert "tok3n" not in repr(settings)


def test_settings_defaults_configure_nothing() -> None:
    settings = from_environment({"LENDGUARD_SMTP_HOST": "", "LENDGUARD_SMTP_PORT": " "})
    assert settings == NotifySettings()
    assert (settings.smtp_port, settings.smtp_starttls, settings.timeout_seconds) == (25, False, 10.0)
    assert not settings.email_configured
    assert not settings.webhook_configured


MAIL = {"LENDGUARD_SMTP_HOST": "localhost", "LENDGUARD_SMTP_FROM": "a@x.org", "LENDGUARD_SMTP_TO": "b@x.org"}


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({**MAIL, "LENDGUARD_SMTP_PORT": "smtp"}, "LENDGUARD_SMTP_PORT"),
        ({**MAIL, "LENDGUARD_SMTP_PORT": "70000"}, "LENDGUARD_SMTP_PORT"),
        ({**MAIL, "LENDGUARD_SMTP_STARTTLS": "maybe"}, "LENDGUARD_SMTP_STARTTLS"),
        ({"LENDGUARD_SMTP_HOST": "localhost", "LENDGUARD_SMTP_TO": "b@x.org"}, "LENDGUARD_SMTP_FROM"),
        ({"LENDGUARD_SMTP_HOST": "localhost", "LENDGUARD_SMTP_FROM": "a@x.org"}, "LENDGUARD_SMTP_TO"),
        ({"LENDGUARD_SMTP_TO": "b@x.org"}, "LENDGUARD_SMTP_TO"),
        ({**MAIL, "LENDGUARD_SMTP_TO": "b@x.org,risk-team"}, "LENDGUARD_SMTP_TO"),
        ({**MAIL, "LENDGUARD_SMTP_FROM": "lendguard"}, "LENDGUARD_SMTP_FROM"),
        ({**MAIL, "LENDGUARD_SMTP_USER": "u"}, "LENDGUARD_SMTP_PASSWORD"),
        ({"LENDGUARD_WEBHOOK_URL": "ftp://hooks.example.org/x"}, "LENDGUARD_WEBHOOK_URL"),
        ({"LENDGUARD_WEBHOOK_URL": "hooks.example.org/x"}, "LENDGUARD_WEBHOOK_URL"),
        ({"LENDGUARD_WEBHOOK_TOKEN": "t"}, "LENDGUARD_WEBHOOK_TOKEN"),
        ({"LENDGUARD_NOTIFY_TIMEOUT_SECONDS": "0"}, "LENDGUARD_NOTIFY_TIMEOUT_SECONDS"),
        ({"LENDGUARD_NOTIFY_TIMEOUT_SECONDS": "soon"}, "LENDGUARD_NOTIFY_TIMEOUT_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        from_environment(environ)


# --------------------------------------------------------------------------- the message


def test_approval_request_carries_the_decision_data() -> None:
    payload = candidate().webhook_body()
    assert payload["kind"] == "approval_requested"
    assert payload["model"] == {"name": "lendguard", "version": "7"}
    assert payload["fpr_by_group"] == FPR
    # Hand-checked: 0.1012 - 0.0999 and 0.1600 - 0.0700.
    assert payload["fpr_gap"]["group_thresholds"] == pytest.approx(0.0013)
    assert payload["fpr_gap"]["single_threshold"] == pytest.approx(0.0900)
    assert payload["cost_by_policy"] == COST
    comparison = payload["champion_comparison"]
    assert comparison["difference"] == pytest.approx(0.4123 - 0.4200)
    assert payload["gate"]["tests"][0] == {"name": "fpr_gap_within_limit", "measured": 0.0013, "limit": 0.05}
    assert payload["commands"]["approve"] == 'lendguard approve 7 --by "YOUR NAME" --note "WHY"'
    assert payload["commands"]["reject"] == 'lendguard reject 7 --by "YOUR NAME" --note "WHY"'


MESSAGES = Path(__file__).parent / "notify_messages"
"""Approval requests as ml/notify.py wrote them before its layout moved to a Jinja template: the
template must send the same subject, text and JSON, byte for byte."""
MESSAGE_CASES: dict[str, dict[str, Any]] = {
    "passed": {},
    "first_model_nan": {"champion_cost_per_applicant": None, "calibration_error": float("nan")},
    "failed_gate_ci_link": {"gate_passed": False, "answer_url": "https://jenkins.example.org/job/lendguard/42/input/",
                            "version": "7 rc'1"},
    "more_expensive_third_policy": {
        "champion_cost_per_applicant": 0.30, "fpr_by_policy": {**FPR, "custom": {"asian": 0.1}},
        "cost_by_policy": {**COST, "custom": 0.5}, "deployed_policy": "single_threshold"},
    "same_cost": {"champion_cost_per_applicant": 0.4123},
}


@pytest.mark.parametrize("case", sorted(MESSAGE_CASES))
def test_the_message_is_the_one_sent_before_the_templates(case: str) -> None:
    message = candidate(**MESSAGE_CASES[case])
    assert f"Subject: {message.subject}\n\n{message.text}" == (MESSAGES / f"{case}.txt").read_text()
    expected = json.loads((MESSAGES / f"{case}.json").read_text())
    assert json.loads(json.dumps(message.webhook_body())) == expected


def test_first_model_has_no_champion_and_nan_becomes_null() -> None:
    message = candidate(champion_cost_per_applicant=None, calibration_error=float("nan"))
    assert message.payload["champion_comparison"]["difference"] is None
    assert message.payload["metrics"]["calibration_error"] is None
    assert "no champion yet" in message.text
    json.dumps(message.webhook_body(), allow_nan=False)
    assert message.payload["answer_url"] is None
    assert "Answer in CI" not in message.text


def test_the_ci_answer_link_is_shown_when_given() -> None:
    url = "https://jenkins.example.org/job/lendguard/42/input/"
    message = candidate(answer_url=url)
    assert message.payload["answer_url"] == url
    assert f"Answer in CI (it is waiting there): {url}" in message.text


def test_approval_request_needs_both_policies() -> None:
    with pytest.raises(ValueError, match="single_threshold"):
        candidate(fpr_by_policy={"group_thresholds": FPR["group_thresholds"]})
    with pytest.raises(ValueError, match="single_threshold"):
        candidate(cost_by_policy={"group_thresholds": 0.4})
    with pytest.raises(ValueError, match="group_thresholds"):
        candidate(fpr_by_policy={"single_threshold": FPR["single_threshold"]})


def test_approval_request_of_a_book_without_a_group_shows_the_single_threshold() -> None:
    """A book without a group column has no group thresholds: the request shows the one policy."""
    message = candidate(fpr_by_policy={"single_threshold": FPR["single_threshold"]},
                        cost_by_policy={"single_threshold": 0.4050}, deployed_policy="single_threshold",
                        group_thresholds=False)
    assert set(message.payload["fpr_by_group"]) == {"single_threshold"}
    assert message.payload["fpr_gap"] == {"single_threshold": pytest.approx(0.09)}
    assert "single_threshold (deployed)" in message.text
    with pytest.raises(ValueError, match="single_threshold"):
        candidate(fpr_by_policy={"group_thresholds": FPR["group_thresholds"]}, group_thresholds=False)


@pytest.mark.parametrize(
    ("subject", "payload"),
    [("two\nlines", {}), ("ok", {"kind": "other"}), ("ok", {"when": object()}), ("ok", {"x": float("inf")})],
)
def test_a_notification_that_cannot_be_sent_fails_when_built(subject: str, payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"subject|reserved|JSON"):
        Notification(kind="alert", subject=subject, text="body", payload=payload)


def fpr_row(text: str, group: str) -> list[str]:
    """The cells of one group's row in the plain-text FPR table."""
    rows = [line.split() for line in text.splitlines() if line.split()[:1] == [group]]
    assert len(rows) == 1, f"expected one row for {group!r}"
    return rows[0]


# --------------------------------------------------------------------------- email


@dataclass
class MailSink:
    """What the local SMTP server received."""

    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.sink.messages.append(
            {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "content": envelope.content}
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[MailSink]:
    """aiosmtpd on 127.0.0.1; it accepts the login user/password "lendguard"/"s3cret" over plain SMTP."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sink = MailSink(port=free_port())

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            sink.logins.append((data.login.decode(), data.password.decode()))
            ok = data.login == b"lendguard" and data.password == b"s3cret"
            return AuthResult(success=ok, handled=False)  # handled=False: the server sends the 535 reply
        return AuthResult(success=False, handled=False)

    controller = controller_module.Controller(
        _Handler(sink),
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=authenticator,
        auth_require_tls=False,  # test only: lets the login run without a certificate
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def mail_settings(port: int, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "lendguard@example.org",
        "smtp_to": ("risk@example.org", "audit@example.org"),
        "timeout_seconds": 5,
    }
    return NotifySettings(**{**values, **overrides})


def test_email_arrives_with_the_report(smtp_server: MailSink) -> None:
    deliveries = send(candidate(), mail_settings(smtp_server.port))

    assert deliveries == [Delivery("email", "risk@example.org, audit@example.org", ok=True, error=None)]
    [received] = smtp_server.messages
    assert received["mail_from"] == "lendguard@example.org"
    assert received["rcpt_tos"] == ["risk@example.org", "audit@example.org"]
    message = email.message_from_bytes(received["content"], policy=email.policy.default)
    assert message["Subject"] == "[lendguard] approval needed: lendguard version 7 (gate passed)"
    assert message["From"] == "lendguard@example.org"
    assert message["To"] == "risk@example.org, audit@example.org"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert "lendguard version 7" in body
    for group in FPR["group_thresholds"]:
        assert fpr_row(body, group) == [
            group,
            f"{FPR['group_thresholds'][group]:.4f}",
            f"{FPR['single_threshold'][group]:.4f}",
        ]
    assert fpr_row(body, "gap") == ["gap", "(max", "-", "min)", "0.0013", "0.0900"]
    assert 'lendguard approve 7 --by "YOUR NAME" --note "WHY"' in body
    assert 'lendguard reject 7 --by "YOUR NAME" --note "WHY"' in body


def test_email_logs_in_when_credentials_are_set(smtp_server: MailSink) -> None:
    settings = mail_settings(smtp_server.port, smtp_user="lendguard", smtp_password="s3cret")  # noqa: S106
    [delivery] = send(candidate(), settings)
    assert delivery.ok, delivery.error
    assert smtp_server.logins == [("lendguard", "s3cret")]
    assert len(smtp_server.messages) == 1

    [rejected] = send(candidate(), mail_settings(smtp_server.port, smtp_user="lendguard", smtp_password="wrong"))  # noqa: S106
    assert not rejected.ok
    assert "Authentication" in (rejected.error or "")
    assert len(smtp_server.messages) == 1


def test_a_refused_recipient_is_reported(smtp_server: MailSink) -> None:
    settings = mail_settings(smtp_server.port, smtp_to=("risk@example.org", "nobody@example.org"))
    [delivery] = send(candidate(), settings)
    assert not delivery.ok
    assert "nobody@example.org" in (delivery.error or "")
    assert smtp_server.messages[0]["rcpt_tos"] == ["risk@example.org"]


def test_unreachable_smtp_is_a_failed_delivery_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="ml.notify"):
        [delivery] = send(candidate(), mail_settings(port))
    assert delivery.channel == "email"
    assert not delivery.ok
    assert f"127.0.0.1:{port}" in (delivery.error or "")
    assert "NOT delivered" in caplog.text


def test_nothing_configured_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ml.notify"):
        assert send(candidate(), NotifySettings()) == []
    assert "notifications are not configured" in caplog.text


# --------------------------------------------------------------------------- webhook


@dataclass
class Receiver:
    """A local HTTP receiver: answers with ``statuses`` in turn (the last one repeats)."""

    statuses: list[int]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    state = Receiver(statuses=list(getattr(request, "param", [200])))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(
                {"method": "POST", "path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
            reply = b'{"ok": true}' if status < 400 else b"receiver is down"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what arrived instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-part"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "RETRY_DELAY_SECONDS", 0.0)


def hook_settings(url: str, token: str | None = "tok3n") -> NotifySettings:  # noqa: S107 - a test token
    return NotifySettings(webhook_url=url, webhook_token=token, timeout_seconds=5)


def test_webhook_receives_the_same_data_and_the_token(receiver: Receiver) -> None:
    message = candidate()
    [delivery] = send(message, hook_settings(receiver.url))

    assert delivery.ok, delivery.error
    assert delivery.channel == "webhook"
    # The recorded target keeps the origin only: many hook URLs carry their secret in the path.
    assert "secret-part" not in delivery.target
    [request] = receiver.requests
    assert request["path"] == "/hooks/secret-part"
    assert request["headers"]["Authorization"] == "Bearer tok3n"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert body["kind"] == "approval_requested"
    assert body["subject"] == message.subject
    assert body["text"] == message.text
    assert body["model"]["version"] == "7"
    assert body["fpr_by_group"] == FPR
    assert body["fpr_gap"]["single_threshold"] == pytest.approx(0.09)
    assert body["champion_comparison"]["champion_cost_per_applicant"] == 0.42
    assert body["commands"]["approve"] == 'lendguard approve 7 --by "YOUR NAME" --note "WHY"'


def test_webhook_without_token_sends_no_authorization(receiver: Receiver) -> None:
    [delivery] = send(candidate(), hook_settings(receiver.url, token=None))
    assert delivery.ok
    assert "Authorization" not in receiver.requests[0]["headers"]


@pytest.mark.parametrize("receiver", [[500, 200]], indirect=True)
def test_webhook_retries_once_after_a_server_error(receiver: Receiver) -> None:
    [delivery] = send(candidate(), hook_settings(receiver.url))
    assert delivery.ok, delivery.error
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["json"] == receiver.requests[1]["json"]


@pytest.mark.parametrize("receiver", [[500]], indirect=True)
def test_webhook_that_keeps_failing_is_reported_not_raised(receiver: Receiver) -> None:
    [delivery] = send(candidate(), hook_settings(receiver.url))
    assert not delivery.ok
    assert delivery.error == "HTTP 500: receiver is down"
    assert len(receiver.requests) == 2  # one retry, no more


@pytest.mark.parametrize("receiver", [[401, 200]], indirect=True)
def test_webhook_client_error_is_not_retried(receiver: Receiver) -> None:
    [delivery] = send(candidate(), hook_settings(receiver.url))
    assert not delivery.ok
    assert (delivery.error or "").startswith("HTTP 401")
    assert len(receiver.requests) == 1


def test_unreachable_webhook_is_a_failed_delivery() -> None:
    [delivery] = send(candidate(), hook_settings(f"http://127.0.0.1:{free_port()}/hook"))
    assert not delivery.ok
    assert "ConnectError" in (delivery.error or "")


def test_both_channels_deliver(smtp_server: MailSink, receiver: Receiver) -> None:
    settings = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_from="lendguard@example.org",
        smtp_to=("risk@example.org",),
        webhook_url=receiver.url,
        timeout_seconds=5,
    )
    deliveries = send(candidate(), settings)
    assert [(d.channel, d.ok) for d in deliveries] == [("email", True), ("webhook", True)]
    assert len(smtp_server.messages) == 1
    assert len(receiver.requests) == 1
