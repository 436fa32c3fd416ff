"""``lendguard upgrade``: bring a warehouse built by an earlier version up to this one, once.

What a new version changes in relations that already hold data (a model's new name, an incremental
mart's key) is done here, by the dbt operation ``upgrade_warehouse`` (macros/upgrade.sql), when an
operator runs it after installing the version: not by a hook on every build.
"""

from __future__ import annotations

import re

from warehouse.build import build_lock, current_loan_book, dbt_vars
from warehouse.dbt import DbtError, run_dbt
from warehouse.paths import Paths

CHANGE = re.compile(r"lendguard-upgrade: ((?:renamed|dropped) .+?)\s*$", re.MULTILINE)


def upgrade(paths: Paths) -> list[str]:
    """Run the upgrade operation on this deployment's warehouse; what it changed, one line each
    (``renamed OLD to NEW``, ``dropped NAME (why)``). Raises ``DbtError`` when dbt could not run it."""
    if not paths.warehouse.exists():
        return []  # nothing built yet: the first build builds everything as this version defines it
    with build_lock(paths):
        run = run_dbt(paths, ["run-operation", "upgrade_warehouse"], dbt_vars(current_loan_book(paths)),
                      target_path=paths.data_dir / "dbt" / "upgrade")
    if run.returncode != 0:
        raise DbtError(f"dbt run-operation upgrade_warehouse failed (exit {run.returncode}):\n{run.output[-3000:]}")
    return CHANGE.findall(run.output)
