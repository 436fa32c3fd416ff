"""The dashboard in a real browser: headless Chromium loads ``/dashboard`` from the running API.

The deployment is real: the trained champion (shared registry, read only), a landing zone and
warehouse of this test's own, traffic through the real server process, simulated outcomes and a
``dbt build`` that turns them into the marts. Chromium renders the page (``--dump-dom`` gives the
DOM it built, ``--screenshot`` a picture, saved under the test's tmp dir); every panel must have
rendered with data. Then the exported file (``lendguard dashboard --out``) is opened the same way
from ``file://``, with background networking off: it must render without any other host.

Chromium comes from the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them when missing); without it the test is skipped and says how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lendguard.processes import ServerProcess, serve_command, start_server
from tests.support.deployment import deployment_env
from tests.support.servers import free_port
from warehouse.build import build
from warehouse.failover import set_failover
from warehouse.landing import PREDICTION_LOG
from warehouse.outcomes import simulate_outcomes
from warehouse.paths import Paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
REQUESTS = 600
PANELS = ("ops", "drift", "output")
_PANEL = re.compile(r"""data-panel=["'](\w+)["'] data-rows=["'](\d+)["']""")


def chromium(*args: str, profile: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a fresh profile and no traffic of its own (STACK.md's flags)."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def rendered(url: str, tmp_path: Path, name: str) -> tuple[str, Path]:
    """The DOM Chromium built for ``url`` and a full-page screenshot of it."""
    dom = chromium("--dump-dom", url, profile=tmp_path / f"profile-{name}-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    png = tmp_path / f"{name}.png"
    shot = chromium(f"--screenshot={png}", "--window-size=1400,2600", url, profile=tmp_path / f"profile-{name}-png")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists(), shot.stderr[-2000:]
    return dom.stdout, png


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def panel_rows(dom: str) -> dict[str, int]:
    return {panel: int(rows) for panel, rows in _PANEL.findall(dom)}


@pytest.fixture
def dashboard_paths(trained_deployment: Paths, tmp_path: Path) -> Paths:
    """A data directory of this test's own (landing zone, state, warehouse, snapshot) on the trained
    deployment's registry, which it only reads."""
    data = tmp_path / "data"
    shutil.copytree(trained_deployment.landing, data / "landing", ignore=shutil.ignore_patterns(PREDICTION_LOG))
    shutil.copytree(trained_deployment.state_dir, data / "state",
                    ignore=shutil.ignore_patterns("*.lock", "*.pid", "failover.json"))
    return Paths.from_env({**os.environ, "LENDGUARD_DATA_DIR": str(data),
                           "MLFLOW_TRACKING_URI": trained_deployment.tracking_uri})


def serve(paths: Paths, tmp_path: Path) -> ServerProcess:
    port = free_port()
    env = {**deployment_env(paths.data_dir), "MLFLOW_TRACKING_URI": paths.tracking_uri,
           "LENDGUARD_FAILOVER_POLL_SECONDS": "0.2"}
    return start_server(serve_command(port), port=port, log_path=tmp_path / "server.log", env=env, new_session=True)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install -y chromium chromium-driver` "
                    "(.ci/run installs it)")
def test_every_panel_renders_with_data_in_chromium(dashboard_paths: Paths, tmp_path: Path) -> None:
    paths = dashboard_paths
    server = serve(paths, tmp_path)
    url = server.url
    env = {**os.environ, **deployment_env(paths.data_dir), "MLFLOW_TRACKING_URI": paths.tracking_uri}
    try:
        before = httpx.get(f"{url}/dashboard", timeout=60)
        assert before.status_code == 503, "no snapshot in this data directory yet"
        assert "lendguard build" in before.text
        replay = subprocess.run(
            [sys.executable, "-m", "lendguard.cli", "replay", "--url", url, "--scenario", "economic_shock",
             "--requests", str(REQUESTS), "--onset", "200", "--concurrency", "4"],
            env=env, capture_output=True, text=True, timeout=600, check=False)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert httpx.post(f"{url}/v1/score", json={"annual_income": -1}, timeout=30).status_code in {400, 422}
        simulate_outcomes(paths, seed=3)
        result = build(paths)
        assert paths.snapshot.exists(), result.run.output[-3000:]
        set_failover(paths, by="browser-test", reason="checking the dashboard shows it")

        dom, png = rendered(f"{url}/dashboard", tmp_path, "dashboard")
        rows = panel_rows(dom)
        for panel in PANELS:
            assert rows.get(panel, 0) > 0, f"panel {panel} rendered without data: {rows}"
        assert rows["ops"] >= 1
        assert dom.count("<svg") >= 6, "every panel drew its charts"
        assert 'data-failover="active"' in dom
        version = re.search(r'data-model-version="([^"]+)"', dom)
        assert version is not None
        assert version.group(1) == "1"
        assert re.search(r"#/experiments/\d+/runs/\w+", dom), "the MLflow run link"
        assert 'href="#approval"' in dom
        assert "approved" in dom, "the approval record"
        width, height = png_size(png)
        assert (width, height) == (1400, 2600)
        assert png.stat().st_size > 50_000, "a picture with charts, not a blank page"

        chosen = httpx.get(f"{url}/dashboard", params={"feature": "purpose"}, timeout=60)
        assert chosen.status_code == 200
        assert "<figure id='hist-purpose' class='hist selected'" in chosen.text
    finally:
        server.stop()

    exported = tmp_path / "dashboard.html"
    export = subprocess.run([sys.executable, "-m", "lendguard.cli", "dashboard", "--out", str(exported)],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert export.returncode == 0, export.stdout + export.stderr
    html = exported.read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*['"]((?:https?:)?//[^'"]*)""", html)
    assert links, "the MLflow run is linked"
    assert all(re.match(r"https?://127\.0\.0\.1:5000/#/experiments/\d+/runs/\w+$", link) for link in links), links
    for fetching in ("<script", "@import", "url("):
        assert fetching not in html
    offline_dom, offline_png = rendered(exported.as_uri(), tmp_path, "exported")
    offline = panel_rows(offline_dom)
    assert all(offline.get(panel, 0) > 0 for panel in PANELS), offline
    assert offline_dom.count("<figure id=\"hist-") >= 10, "every feature's histogram is in the file"
    assert png_size(offline_png)[0] == 1400
