"""What notifications say: the ``Notification`` both channels carry, and the approval request.

The approval request's data (the webhook's JSON) is built here; its plain-text layout, which mail
shows and chat webhooks display, is the Jinja template ``templates/approval_requested.txt.j2``,
with the column helpers below (``table``, ``fields``, ``number``, ``measure``) as its functions.
Monitoring alerts are laid out by their sender (``lendguard.monitor.alert_notification``).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

KIND_APPROVAL_REQUESTED = "approval_requested"
KIND_ALERT = "alert"

SINGLE_THRESHOLD = "single_threshold"
POLICIES = ("group_thresholds", SINGLE_THRESHOLD)
"""The two decision policies every approval request compares (DESIGN: "Fairness policy")."""


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
    report: ReportReference | None = None,
    group_thresholds: bool = True,
) -> Notification:
    """The message that asks a person to approve or reject a candidate version.

    Everything an approver needs to decide without opening another tool (DESIGN: "every approval
    shows the cost and the FPR gap of both" policies), and the exact commands to answer with.

    ``gate_tests`` holds (test name, measured value, limit); ``fpr_by_policy`` maps each of
    ``POLICIES`` to {group: FPR}; ``cost_by_policy`` maps each policy to its expected cost per
    applicant (5·FN + 1·FP over applicants). The champion comparison uses ``cost_per_applicant``
    (the candidate under ``deployed_policy``) against ``champion_cost_per_applicant``, None when
    there is no champion yet. ``answer_url`` is where a CI server waits for the answer (a Jenkins
    input, a GitHub deployment review), when there is one. ``report`` links the version's model
    report (``ml.report``) with its highlights. Non-finite numbers are shown as "n/a" and sent as null.
    ``group_thresholds`` False: the book has no group column, so the version has the single threshold
    only (there are no group thresholds to compare it with).
    """
    version = str(version)
    required = POLICIES if group_thresholds else (SINGLE_THRESHOLD,)
    for name, mapping in (("fpr_by_policy", fpr_by_policy), ("cost_by_policy", cost_by_policy)):
        missing = [p for p in required if p not in mapping]
        if missing:
            raise ValueError(f"{name} must cover the policies {required}; missing {missing}")
    if deployed_policy not in fpr_by_policy:
        raise ValueError(f"deployed_policy {deployed_policy!r} is not one of {sorted(fpr_by_policy)}")

    policies = [*required, *(p for p in fpr_by_policy if p not in required)]
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
        "report": None if report is None else {"path": report.path, "artifact_uri": report.artifact_uri,
                                               "highlights": list(report.highlights)},
    }
    text = _TEMPLATES.get_template("approval_requested.txt.j2").render(
        model_name=model_name, version=version, run_id=run_id, run_url=run_url, dev_api_url=dev_api_url,
        gate_word=gate_word, tests=tests, metrics=payload["metrics"], deployed_policy=deployed_policy, fpr=fpr,
        gaps=gaps, costs=costs, champion=payload["champion_comparison"], commands=commands, answer_url=answer_url,
        report=payload["report"],
    )
    return Notification(kind=KIND_APPROVAL_REQUESTED, subject=subject, text=text, payload=payload)


@dataclass(frozen=True)
class ReportReference:
    """Where the candidate's model report is (a file path, and its MLflow artifact when logged), and
    the lines of it worth reading in the message itself."""

    path: str
    artifact_uri: str | None = None
    highlights: Sequence[str] = ()


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


def _lines(lines: list[str]) -> str:
    return "\n".join(lines)


_TEMPLATES = Environment(
    loader=PackageLoader("ml.notify", "templates"), autoescape=False,  # noqa: S701 - plain text, never HTML
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
)
_TEMPLATES.globals.update(
    number=_fmt, measure=_fmt_measure,
    table=lambda header, rows: _lines(_table(header, rows)),
    fields=lambda rows: _lines(_fields(rows)),
)
