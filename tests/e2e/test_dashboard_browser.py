"""The dashboard in a real browser: headless Chromium loads ``/dashboard`` from the dashboard's own process.

The deployment is real: the trained champion (shared registry, read only), a landing zone and
warehouse of this test's own, traffic through the real scoring server, simulated outcomes and a
``dbt build`` that turns them into the marts; ``lendguard dashboard serve`` serves the page beside
the scoring API (which no longer has the route). Chromium renders it (``--dump-dom`` gives the DOM
it built) and every panel must have rendered with data. Then Chromium lays the page out at 1280,
1600 and 1920 px with a small measuring script added to a copy of it (the page itself has none),
and takes a screenshot at each width (PNG files in the test's directory): the three panels have a
real size, the deployed version's text is on screen, and no card, panel, grid cell or table has
content wider than itself. Then the exported file (``lendguard dashboard --out``) is opened from
``file://``, with background networking off: it must render without any other host.

Chromium comes from the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them when missing); without it the test is skipped and says how to install it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from lendguard.processes import ServerProcess, start_server
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
    """Headless Chromium with a fresh profile and no traffic of its own (no background networking: the
    machine's closed network refuses it)."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def rendered(url: str, tmp_path: Path, name: str) -> str:
    """The DOM Chromium built for ``url``."""
    dom = chromium("--dump-dom", url, profile=tmp_path / f"profile-{name}-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


WIDTHS = (1280, 1600, 1920)
"""Window widths the page must fit (issue 19: the per-group FPR table overran its card at 1400 and 1920)."""
MEASURE = """<script>
// Added to a copy of the page by the test (the dashboard has no script): what the browser laid out.
const box = (el) => el.getBoundingClientRect();
const place = (el) => [...el.parentNode.children].indexOf(el);
const name = (el) => el.dataset.card || el.dataset.panel
  || `${el.closest("[data-panel]")?.dataset.panel} ${el.tagName.toLowerCase()} #${place(el)}`;
const overflowing = [...document.querySelectorAll(".card, .panel, .grid > *, table")]
  .filter((el) => el.scrollWidth > el.clientWidth + 1 || box(el).right > window.innerWidth + 1)
  .map((el) => `${name(el)}: ${el.scrollWidth}px of content in ${el.clientWidth}px`);
const panels = Object.fromEntries(["ops", "drift", "output"].map((name) => {
  const el = document.querySelector(`[data-panel='${name}']`);
  return [name, el ? [Math.round(box(el).width), Math.round(box(el).height)] : null];
}));
const version = document.querySelector("[data-model-version]");
const shown = version && box(version).width > 0 && box(version).right <= window.innerWidth
  && getComputedStyle(version).visibility === "visible";
const out = document.createElement("pre");
out.id = "layout";
out.textContent = JSON.stringify({overflowing, panels, version_text: shown ? version.innerText : null,
                                  width: window.innerWidth});
document.body.appendChild(out);
</script>"""


def layout(html: str, tmp_path: Path, name: str, width: int) -> dict[str, Any]:
    """What Chromium measured on ``html`` at ``width`` px wide (see ``MEASURE``); a screenshot of the
    page as laid out is saved beside it (``<name>-<width>.png`` in the test's directory)."""
    copy = tmp_path / f"{name}-measured.html"
    copy.write_text(html.replace("</body>", MEASURE + "</body>"))
    size = f"--window-size={width},2600"
    shot = tmp_path / f"{name}-{width}.png"
    # One launch does both: the DOM it built and a screenshot of the same layout.
    dom = chromium(size, "--dump-dom", f"--screenshot={shot}", copy.as_uri(), profile=tmp_path / f"profile-{name}-lay")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert shot.stat().st_size > 10_000, "a screenshot of the laid-out page"
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom.stdout, flags=re.DOTALL)
    assert found is not None, "the measuring script ran"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def assert_lays_out(html: str, tmp_path: Path, name: str) -> None:
    """At each of ``WIDTHS``: three panels of real size, the deployed version on screen, no card, panel,
    grid cell or table wider than its box (content overflowing it, or it overflowing the window)."""
    for width in WIDTHS:
        laid_out = layout(html, tmp_path, name, width)
        assert laid_out["width"] == width
        assert laid_out["overflowing"] == [], f"content wider than its box at {width} px"
        for panel, size in laid_out["panels"].items():
            assert size is not None, panel
            assert size[0] > 1000, f"panel {panel} is {size[0]} px wide in a {width} px window"
            assert size[1] > 300, f"panel {panel} is {size[1]} px high: its charts did not lay out"
        assert laid_out["version_text"] == "version 1 (champion)", "the deployed version is on screen"


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


def serve(paths: Paths, tmp_path: Path, *command: str) -> ServerProcess:
    """``lendguard <command> --port P`` on a free port, once its readiness probe answers."""
    port = free_port()
    env = {**deployment_env(paths.data_dir), "MLFLOW_TRACKING_URI": paths.tracking_uri,
           "LENDGUARD_FAILOVER_POLL_SECONDS": "0.2"}
    log = tmp_path / f"{'-'.join(command)}.log"
    argv = [sys.executable, "-m", "lendguard.cli", *command, "--port", str(port)]
    return start_server(argv, port=port, log_path=log, env=env, new_session=True)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install -y chromium chromium-driver` "
                    "(.ci/run installs it)")
def test_every_panel_renders_with_data_in_chromium(dashboard_paths: Paths, tmp_path: Path) -> None:
    paths = dashboard_paths
    server = serve(paths, tmp_path, "serve")
    url = server.url
    dashboard_server = serve(paths, tmp_path, "dashboard", "serve")
    board = dashboard_server.url
    env = {**os.environ, **deployment_env(paths.data_dir), "MLFLOW_TRACKING_URI": paths.tracking_uri}
    try:
        assert httpx.get(f"{url}/dashboard", timeout=30).status_code == 404, "not on the scoring API"
        before = httpx.get(f"{board}/dashboard", timeout=60)
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

        dom = rendered(f"{board}/dashboard", tmp_path, "dashboard")
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
        assert_lays_out(httpx.get(f"{board}/dashboard", timeout=60).text, tmp_path, "dashboard")

        chosen = httpx.get(f"{board}/dashboard", params={"feature": "purpose"}, timeout=60)
        assert chosen.status_code == 200
        assert "<figure id='hist-purpose' class='hist selected'" in chosen.text
    finally:
        for process in (dashboard_server, server):
            process.stop()

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
    offline_dom = rendered(exported.as_uri(), tmp_path, "exported")
    offline = panel_rows(offline_dom)
    assert all(offline.get(panel, 0) > 0 for panel in PANELS), offline
    assert offline_dom.count("<figure id=\"hist-") >= 10, "every feature's histogram is in the file"
    assert_lays_out(html, tmp_path, "exported")
