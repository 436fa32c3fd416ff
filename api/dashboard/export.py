"""``lendguard dashboard --out FILE``: the dashboard as one self-contained HTML file.

The same view-model and page as ``GET /dashboard`` (``standalone=True``: every histogram inside,
switched by in-page links), written atomically (temporary name beside the target, fsync, rename),
so a reader of FILE never sees half a page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from api.dashboard.model import LATEST, Dashboard, load_dashboard
from api.dashboard.page import render_page
from warehouse.paths import Paths


def export_dashboard(
    paths: Paths, out: Path, mlflow_ui_url: str, *, version: str | None = None, window: str = LATEST
) -> Dashboard:
    """Render the dashboard of ``paths``' snapshot into ``out``; raises SnapshotMissingError before a build."""
    view = load_dashboard(paths, mlflow_ui_url, version=version, window=window)
    write_atomically(out, render_page(view, standalone=True))
    return view


def write_atomically(target: Path, text: str) -> None:
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
