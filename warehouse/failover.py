"""The failover flag: one small JSON file every API replica reads, set by monitoring or an admin.

While it is set, the API applies a fallback instead of the model's decision (``manual_review``:
every application goes to a person; ``previous_champion``: the version that was champion before)
and says so in every response and log row. Setting it is automatic (a critical alert) or manual
(``POST /v1/admin/failover``); clearing it is always a person's decision (``lendguard failover
clear --by --note`` or ``DELETE /v1/admin/failover``), and it stands: the clear acknowledges every
alert open at that moment (``mon_alerts`` in the published snapshot, and the alerts that set the
flag), and monitoring sets the flag again only for a critical alert that was not among them.

The flag lives in ``<data>/state/failover.json`` and is replaced atomically (temporary name,
fsync, rename), so a reader sees the old state or the new one, never half of either. Every change
is also landed as a ``failover_events`` row, so the warehouse keeps the whole history (who, when,
why) while the file holds only the present.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from warehouse import datasets
from warehouse.errors import LendguardError
from warehouse.landing import TMP_SUFFIX, fsync_dir
from warehouse.marts import MartMissingError, open_marts
from warehouse.paths import Paths
from warehouse.publish import SnapshotMissingError

Fallback = Literal["manual_review", "previous_champion"]
FALLBACKS: tuple[Fallback, ...] = ("manual_review", "previous_champion")
DEFAULT_FALLBACK: Fallback = "manual_review"
FLAG_FILE = "failover.json"


class FailoverError(LendguardError):
    """A failover change the rules do not allow (unknown fallback, clearing without a name or note)."""


@dataclass(frozen=True)
class FailoverState:
    """The flag as last written. ``active`` False with no ``set_at`` means it was never set."""

    active: bool = False
    fallback: Fallback = DEFAULT_FALLBACK
    reason: str | None = None
    set_by: str | None = None
    set_at: str | None = None
    """ISO-8601 naive UTC, like the warehouse's timestamps."""
    alert_ids: list[str] = field(default_factory=list)
    cleared_by: str | None = None
    cleared_at: str | None = None
    clear_note: str | None = None
    acknowledged_alert_ids: list[str] = field(default_factory=list)
    """The alerts open when it was last cleared: a person has seen them, monitoring does not act on them again."""


def flag_path(paths: Paths) -> Path:
    return paths.state_dir / FLAG_FILE


def read_failover(paths: Paths) -> FailoverState:
    """The current flag; no file means failover was never set (normal mode)."""
    try:
        raw = json.loads(flag_path(paths).read_text())
    except FileNotFoundError:
        return FailoverState()
    return FailoverState(**{k: v for k, v in raw.items() if k in FailoverState.__dataclass_fields__})


def set_failover(
    paths: Paths,
    *,
    by: str,
    reason: str,
    fallback: str = DEFAULT_FALLBACK,
    alert_ids: list[str] | None = None,
) -> FailoverState:
    """Switch every API reading this data directory to ``fallback`` (idempotent while active)."""
    if fallback not in FALLBACKS:
        raise FailoverError(f"unknown fallback {fallback!r}; expected one of {list(FALLBACKS)}")
    if not by.strip() or not reason.strip():
        raise FailoverError("setting failover needs who (by) and why (reason)")
    state = FailoverState(
        active=True, fallback=fallback, reason=reason, set_by=by, set_at=_now().isoformat(),  # type: ignore[arg-type]
        alert_ids=list(alert_ids or []),
    )
    _write(paths, state)
    _land(paths, "set", fallback=state.fallback, reason=reason, actor=by, note=None, alert_ids=state.alert_ids)
    return state


def clear_failover(paths: Paths, *, by: str, note: str) -> FailoverState:
    """Back to the model's decisions: a person's call, so a name and a note are required."""
    if not by.strip() or not note.strip():
        raise FailoverError("clearing failover is a person's decision: give --by NAME and --note TEXT")
    current = read_failover(paths)
    acknowledged = sorted(set(current.alert_ids) | set(open_alert_ids(paths)))
    state = FailoverState(
        active=False, fallback=current.fallback, reason=current.reason, set_by=current.set_by,
        set_at=current.set_at, alert_ids=current.alert_ids,
        cleared_by=by, cleared_at=_now().isoformat(), clear_note=note, acknowledged_alert_ids=acknowledged,
    )
    _write(paths, state)
    _land(paths, "clear", fallback=None, reason=current.reason, actor=by, note=note, alert_ids=acknowledged)
    return state


def open_alert_ids(paths: Paths) -> list[str]:
    """The alerts open in the published snapshot (``mon_alerts``); none before monitoring was first built."""
    try:
        with open_marts(paths) as marts:
            return [row["alert_id"] for row in marts.rows("select alert_id from mon_alerts")]
    except (SnapshotMissingError, MartMissingError):  # no build yet, or one without the monitoring marts
        return []


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _write(paths: Paths, state: FailoverState) -> None:
    final = flag_path(paths)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
    with tmp.open("w") as handle:
        json.dump(asdict(state), handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(final)
    fsync_dir(final.parent)


def _land(
    paths: Paths, action: str, *, fallback: str | None, reason: str | None, actor: str, note: str | None,
    alert_ids: list[str],
) -> None:
    datasets.land_rows(paths, datasets.FAILOVER_EVENTS, [{
        "event_id": uuid.uuid4().hex, "action": action, "fallback": fallback, "reason": reason,
        "actor": actor, "note": note, "alert_ids": json.dumps(alert_ids), "occurred_at": _now(),
    }])
