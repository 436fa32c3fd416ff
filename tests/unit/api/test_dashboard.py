"""The dashboard: view-model from a snapshot, SVG charts, the page, the route and the export.

The snapshot here is a small DuckDB file with hand-made mart rows (the real marts are built in the
browser test, tests/e2e/test_dashboard_browser.py), so every number on the page is known.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from api.app import create_app
from api.auth import create_key
from api.dashboard import charts
from api.dashboard.app import create_dashboard_app
from api.dashboard.export import export_dashboard
from api.dashboard.model import load_dashboard
from api.dashboard.page import render_missing, render_page
from api.dashboard.route import dashboard_handler
from lendguard.cli import main
from tests.support.dashboard import MARTS, MLFLOW_UI, publish_marts
from warehouse.failover import set_failover
from warehouse.paths import Paths
from warehouse.publish import SnapshotMissingError
from warehouse.settings import ApiSettings, Settings


@pytest.fixture
def published(paths: Paths) -> Paths:
    publish_marts(paths)
    return paths


def test_view_model_reads_every_panel_and_fails_soft_on_missing_marts(published: Paths) -> None:
    view = load_dashboard(published, MLFLOW_UI, with_registry=False)
    assert view.version == "1", "no champion known: the latest version with traffic"
    assert view.panel_rows == {"ops": 2, "drift": 3, "output": 3}
    assert [r["feature"] for r in view.drift.rows] == ["credit_score", "annual_income", "purpose"]
    assert view.feature == "credit_score", "the most drifted numeric input is shown first"
    assert view.features == ["credit_score", "purpose"]
    assert view.alert_count == 1
    assert float(view.gaps["estimated_fpr_gap"]) == pytest.approx(0.05)
    # mon_realised_quality and the delivery marts are absent: those parts say so, nothing raises.
    assert view.gaps["realised_fpr_gap"] is None
    assert "mon_realised_quality" in view.gaps["realised_missing"]
    assert [r["fairness_group"] for r in view.fairness.rows] == ["Asian", "White", "Asian · BISG", "White · BISG"]
    assert load_dashboard(published, MLFLOW_UI, feature="purpose", with_registry=False).feature == "purpose"
    assert load_dashboard(published, MLFLOW_UI, feature="nope", with_registry=False).feature == "credit_score"


def test_group_panels_name_the_method_and_show_the_weighted_numbers(published: Paths) -> None:
    view = load_dashboard(published, MLFLOW_UI, with_registry=False)
    assert view.gaps["methods"] == ["self_reported", "bisg"]
    assert float(view.gaps["bisg_estimated_fpr_gap"]) == pytest.approx(0.07)
    bisg = next(r for r in view.positive_rates.rows if r["method"] == "bisg")
    assert (bisg["fairness_group"], float(bisg["weight"]), float(bisg["n_eff"])) == ("Asian · BISG", 71.5, 40.2)
    html = render_page(view)
    assert "Asian · BISG" in html
    assert "estimated gap · BISG 0.07" in html
    assert "effective n" in html


def test_a_renamed_column_leaves_only_its_chart_without_data(paths: Paths) -> None:
    publish_marts(paths, MARTS.replace("ks_d, ks_p_value", "ks_statistic, ks_p_value")
                  .replace("('1', 'deployment', 0, 'purpose', 218", "('1', 'none', 0, 'purpose', 218"))
    view = load_dashboard(paths, MLFLOW_UI, with_registry=False)
    assert view.drift.rows == []
    assert "ks_d" in (view.drift.missing or "")
    html = render_page(view)
    assert "data-panel='drift' data-rows='0'" in html
    assert "data-panel='ops' data-rows='2'" in html
    assert "Numeric inputs: KS D: no data yet" in html


def test_latest_count_window_with_enough_rows_is_shown_by_default(paths: Paths) -> None:
    publish_marts(paths, MARTS + """
        insert into mon_drift_numeric values
            ('1', 'count', 1, 'credit_score', 600, 5000, 0.3, 1e-9, 0.5, 'critical',
             timestamp '2026-01-01 11:00', timestamp '2026-01-01 11:59');
    """)
    latest = load_dashboard(paths, MLFLOW_UI, with_registry=False)
    assert latest.drift_window.key == ("count", 1), "600 rows: enough (drift_min_window_rows = 500)"
    assert latest.drift_window.requests == 600
    assert [float(r["ks_d"]) for r in latest.drift.rows] == [0.3]
    assert latest.output_window.key == ("deployment", 0), "no count window of positive rates: the deployment"
    assert "latest count window #1 (600 requests" in render_page(latest)
    whole = load_dashboard(paths, MLFLOW_UI, window="deployment", with_registry=False)
    assert whole.drift_window.key == ("deployment", 0)
    assert len(whole.drift) == 3


def test_missing_snapshot_raises(paths: Paths) -> None:
    with pytest.raises(SnapshotMissingError, match="lendguard build"):
        load_dashboard(paths, MLFLOW_UI, with_registry=False)


def test_page_marks_panels_and_parses(published: Paths) -> None:
    set_failover(published, by="oncall", reason="drift on credit_score")
    html = render_page(load_dashboard(published, MLFLOW_UI, with_registry=False))
    for panel, rows in (("ops", 2), ("drift", 3), ("output", 3), ("alerts", 1)):
        assert f"data-panel='{panel}' data-rows='{rows}'" in html
    assert "data-failover='active'" in html
    assert "drift on credit_score" in html
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL):
        root = ET.fromstring(svg)  # noqa: S314 - our own output: well-formed, with a title for screen readers
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    served_link = "href='?feature=purpose&amp;window=latest&amp;version=1#hist-purpose'"
    assert served_link in html, "served: the selector asks the server"


def test_every_value_from_the_snapshot_and_the_flag_is_escaped(paths: Paths) -> None:
    hostile = "<script>alert('x')</script>"
    publish_marts(paths, MARTS.replace("'D=0.21'", "'" + hostile.replace("'", "''") + "'"))
    set_failover(paths, by="<b>mallory</b>", reason=hostile)
    html = render_page(load_dashboard(paths, MLFLOW_UI, with_registry=False))
    assert "<script" not in html
    assert "<b>mallory" not in html
    assert "&lt;b&gt;mallory&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html, "alert details, in the cell and its title"
    missing = render_missing(hostile)
    assert "<script" not in missing
    assert "&lt;script&gt;" in missing


def test_exported_file_is_self_contained(published: Paths, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "dashboard.html"
    view = export_dashboard(published, out, MLFLOW_UI)
    html = out.read_text()
    assert view.panel_rows["drift"] == 3
    assert "<script" not in html
    assert html.count("<figure id='hist-") == 2, "every feature's histogram is in the file"
    assert "href='#hist-purpose'" in html
    external = re.findall(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//""", html)
    assert external == [], "no resource from another host (the registry link is absent without a registry)"
    assert not list(out.parent.glob(".*.tmp")), "written atomically, nothing left behind"


def test_route_serves_the_page_and_503_before_the_first_build(paths: Paths) -> None:
    app = Litestar(route_handlers=[dashboard_handler(paths, MLFLOW_UI)])
    with TestClient(app) as client:
        missing = client.get("/dashboard")
        assert missing.status_code == 503
        assert "lendguard build" in missing.text
        publish_marts(paths)
        page = client.get("/dashboard", params={"feature": "purpose"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<figure id='hist-purpose' class='hist selected'" in page.text


def test_the_dashboard_process_needs_a_read_key_when_keys_are_configured(published: Paths, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yml"
    key = {scope: create_key(keys_file, f"holder-{scope}", [scope]) for scope in ("score", "read", "admin")}
    app = create_dashboard_app(Settings(api=ApiSettings(api_keys_file=keys_file, require_auth=True)), published)
    with TestClient(app) as client:
        assert client.get("/dashboard").status_code == 401
        refused = client.get("/dashboard", headers={"X-API-Key": key["score"]})
        assert refused.status_code == 403
        assert "lacks the 'read' scope" in refused.text
        for scope in ("read", "admin"):
            page = client.get("/dashboard", headers={"Authorization": f"Bearer {key[scope]}"})
            assert page.status_code == 200, scope
            assert "data-panel='drift' data-rows='3'" in page.text
        assert client.get("/healthz").status_code == 200, "a load balancer's check needs no key"


def test_the_dashboard_process_is_open_without_keys(published: Paths) -> None:
    with TestClient(create_dashboard_app(Settings(), published)) as client:
        assert client.get("/dashboard").status_code == 200


def test_the_dashboard_command_wants_a_file_or_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard"]) == 2  # a usage error
    assert "lendguard dashboard serve" in capsys.readouterr().err


def test_the_scoring_api_no_longer_serves_the_dashboard(paths: Paths) -> None:
    with TestClient(create_app(ApiSettings(model_poll_seconds=0), paths)) as client:
        assert client.get("/dashboard").status_code == 404
        assert client.get("/healthz").status_code == 200


def test_nice_ticks_and_number_format() -> None:
    assert charts.nice_ticks(0, 0.23) == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
    assert charts.nice_ticks(0, 870) == [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
    assert charts.nice_ticks(5, 5)[0] <= 5 <= charts.nice_ticks(5, 5)[-1]
    assert charts.fmt(None) == "–"
    assert charts.fmt(1234.0) == "1,234"
    assert charts.fmt(0.1250) == "0.125"
    assert charts.fmt(0.00001234) == "1.23e-05"


def test_time_series_draws_limits_and_gaps() -> None:
    times = [datetime(2026, 1, 1, h) for h in range(4)]
    svg = charts.time_series("Latency", times, [charts.Series("p99", [10.0, None, 30.0, 40.0], "#000")],
                             limits=[charts.Limit("p99 limit", 250.0)])
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}circle")) == 1, "the point before the gap stands alone"
    assert len(root.findall(f"{ns}polyline")) == 1
    assert "p99 limit 250" in svg
    apart = charts.time_series("Requests", [datetime(2026, 1, 1, 0), datetime(2026, 1, 1, 1), datetime(2026, 3, 1, 0)],
                               [charts.Series("requests", [1.0, 2.0, 3.0], "#000")])
    root = ET.fromstring(apart)  # noqa: S314 - our own output
    assert len(root.findall(f"{ns}polyline")) == 1, "no line drawn across two months without traffic"
    assert len(root.findall(f"{ns}circle")) == 1


def test_a_time_axis_splits_where_the_data_has_separate_spans() -> None:
    """A replay's simulated hours in January beside today's traffic: two axis pieces, neither a sliver."""
    replayed = [datetime(2026, 1, 5, 8 + h) for h in range(10)]
    today = [datetime(2026, 12, 4, 9 + h) for h in range(3)]
    assert charts.time_spans(replayed + today) == [(replayed[0], replayed[-1]), (today[0], today[-1])]
    assert charts.time_spans(replayed) == [(replayed[0], replayed[-1])], "one span: no split"
    night = [datetime(2026, 1, 5, h) for h in (8, 9, 10)] + [datetime(2026, 1, 6, h) for h in (8, 9)]
    assert len(charts.time_spans(night)) == 1, "a night without traffic does not split the axis"

    svg = charts.time_series("Requests", replayed + today, [charts.Series("requests", [1.0] * 13, "#000")])
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f".//{ns}g[@class='axis-break']")) == 1
    assert "333 days without data" in svg
    lines = [[float(p.split(",")[0]) for p in line.get("points", "").split()] for line in root.findall(f"{ns}polyline")]
    plot = charts.WIDTH - charts.MARGIN_LEFT - charts.MARGIN_RIGHT
    assert len(lines) == 2
    assert all(max(xs) - min(xs) >= charts.MIN_SPAN_SHARE * plot - 1 for xs in lines), "each span gets real width"
    assert "2026-01-05 08:00" in svg, "the year is shown when the spans are in different years"
    assert "2 separate spans" in svg


def test_a_chart_without_values_is_replaced_by_its_explanation() -> None:
    limits = [[charts.Limit("limit", 0.1)], [charts.Limit("limit", 0.1)]]
    svg = charts.bars_against_limits("FPR gap", ["estimated", "realised"], [None, None], limits, [None, None],
                                     no_values="fewer than two groups large enough")
    assert "FPR gap: no data yet" in svg
    assert "fewer than two groups large enough" in svg
    assert "class='limit'" not in svg, "no limit lines over nothing"
    nothing = charts.time_series("Latency", [datetime(2026, 1, 1)], [charts.Series("p99", [None], "#000")])
    assert "no data yet" in nothing


VINTAGE = """
create table mon_vintage_default_rates as select * from (values
    ('1', date '2026-01-01', 0, '__overall__', 5, 1, 1, 0.2), ('1', date '2026-01-01', 1, '__overall__', 5, 1, 2, 0.4),
    ('1', date '2026-01-01', 0, 'White', 2, 0, 0, 0.0), ('1', date '2026-01-01', 1, 'White', 2, 1, 1, 0.5),
    ('1', date '2026-02-01', 0, '__overall__', 2, 1, 1, 0.5)
) t(model_version, cohort_month, months_on_book, fairness_group, loans, defaults_in_month, cumulative_defaults,
    cumulative_default_rate);
"""


def test_alert_details_are_fields_and_the_output_panel_shows_vintage_curves(paths: Paths) -> None:
    details = '{"ks_d": 0.21, "ks_p_value": 1e-09, "n": 218, "test": "scipy.stats.ks_2samp(method=asymp)"}'
    publish_marts(paths, MARTS.replace("'D=0.21'", f"'{details}'") + VINTAGE)
    view = load_dashboard(paths, MLFLOW_UI, with_registry=False)
    assert len(view.vintage) == 5
    html = render_page(view)
    fields = "<dl class='fields'><dt>ks d</dt><dd>0.21</dd><dt>ks p value</dt><dd>1e-09</dd><dt>n</dt><dd>218</dd>"
    assert fields in html
    assert "{&#34;ks_d" not in html
    assert '{"ks_d' not in html, "no raw JSON"
    assert "Vintage curves: cumulative default rate by months on book" in html
    assert "2026-01 (5 loans)" in html
    assert "2026-02 (2 loans)" in html
    latest = re.search(r"<h3 id='vintage'>.*?</section>", html, flags=re.DOTALL)
    assert latest is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", latest.group(0))
    assert cells[:6] == ["2026-01", "White", "1", "2", "1", "50.00%"], "each cohort and group at its latest month"


def test_without_outcomes_the_vintage_chart_says_why(published: Paths) -> None:
    html = render_page(load_dashboard(published, MLFLOW_UI, with_registry=False))
    assert "Vintage curves: cumulative default rate by months on book: no data yet" in html
    assert "no gap to judge yet: estimated gap 0.05 over 2 groups; realised gap:" not in html, "one gap is known"


def test_the_title_names_the_deployed_version_as_its_card_does(published: Paths) -> None:
    """The champion (2) has no traffic yet, so the panels show version 1: the title must still name
    the deployed version, as the model card does, not the panels' (issue #19: "model 1" beside
    "version 2 (champion)")."""
    view = load_dashboard(published, MLFLOW_UI, with_registry=False)
    view = dataclasses.replace(view, model=dataclasses.replace(view.model, version="2", registry_error=None))
    assert view.version == "1"
    html = render_page(view)
    page_title = re.search(r"<title>(.*?)</title>", html)  # the page's, before any chart's
    assert page_title is not None
    assert page_title.group(1) == "lendguard monitoring — version 2 (champion)"
    assert "version <strong>2</strong> (champion)" in html
    assert "drift and output panels: version 1" in html, "the panels' own version is named beside them"
    nobody = render_page(dataclasses.replace(view, model=dataclasses.replace(view.model, version=None)))
    assert "<title>lendguard monitoring — no deployed version</title>" in nobody
