"""The report's charts as inline SVG, drawn with matplotlib's SVG backend (no pyplot, no state).

Text stays text (searchable, small), the output is deterministic (fixed hash salt, no date), and
the XML prolog, DOCTYPE and metadata are dropped so the element can sit inside the HTML page; a
page that holds it fetches nothing. Every chart has a table of its numbers beside it in the page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

CANDIDATE_COLOR = "#1f5fa8"
CHAMPION_COLOR = "#888888"
POLICY_COLORS = {"group_thresholds": "#1f5fa8", "single_threshold": "#d98c00"}
LIMIT_COLOR = "#c62828"
_STYLE: dict[RcKeyType, Any] = {"svg.fonttype": "none", "svg.hashsalt": "lendguard-report", "font.size": 9.0,
          "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
                                 "grid.color": "#e5e5e5"}
_DROP = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", re.DOTALL)


@dataclass(frozen=True)
class Line:
    """One plotted line: its legend name, points and colour."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Point:
    """One marked point (a chosen threshold, an operating point) with its label."""

    name: str
    x: float
    y: float
    color: str


@contextmanager
def _figure(width: float = 6.4, height: float = 3.6) -> Iterator[tuple[Figure, Axes]]:
    # matplotlib costs about a second to import: only a report pays for it.
    import matplotlib as mpl  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    with mpl.rc_context(_STYLE):
        figure = Figure(figsize=(width, height))
        yield figure, figure.add_subplot()


def _svg(figure: Figure, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = _DROP.sub("", buffer.getvalue()).strip()
    return svg.replace("<svg ", f"<svg role=\"img\" aria-label=\"{_attribute(title)}\" class=\"chart\" ", 1)


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def lines(
    title: str, series: Sequence[Line], *, x_label: str, y_label: str, points: Sequence[Point] = (),
    diagonal: bool = False, square: bool = False, h_limit: tuple[str, float] | None = None,
) -> str:
    """Lines (and marked points) on shared axes: ROC, calibration, cost curves."""
    with _figure(*((4.8, 4.4) if square else (6.4, 3.6))) as (figure, axes):
        if diagonal:
            axes.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1, label="chance / perfect")
        for line in series:
            axes.plot(list(line.x), list(line.y), color=line.color, linestyle="--" if line.dashed else "-",
                      marker="o" if line.markers else None, markersize=3.5, linewidth=1.6, label=line.name)
        for point in points:
            axes.plot([point.x], [point.y], marker="D", markersize=7, color=point.color, linestyle="none",
                      markeredgecolor="black", label=point.name)
        if h_limit is not None:
            axes.axhline(h_limit[1], color=LIMIT_COLOR, linestyle="--", linewidth=1, label=h_limit[0])
        axes.set(title=title, xlabel=x_label, ylabel=y_label)
        if square:
            axes.set_aspect("equal", adjustable="box")
        axes.legend(loc="best", fontsize=8, frameon=False)
        return _svg(figure, title)


@dataclass(frozen=True)
class Whisker:
    """One group's rate with its interval."""

    label: str
    value: float | None
    low: float | None
    high: float | None


def intervals(title: str, panels: Sequence[tuple[str, str, Sequence[Whisker]]], *, x_label: str) -> str:
    """Per group, a dot and its interval; one row of panels, ``(heading, colour, whiskers)`` each
    (``title`` names the whole for screen readers; the page's heading says it to everyone else)."""
    labels = list(dict.fromkeys(w.label for _, _, rows in panels for w in rows))
    height = 1.0 + 0.32 * max(len(labels), 1)
    with _figure(2.4 * len(panels) + 1.4, height) as (figure, _):
        figure.clear()
        axes_list = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for axes, (heading, color, rows) in zip(axes_list, panels, strict=True):
            by_label = {w.label: w for w in rows}
            for position, label in enumerate(labels):
                whisker = by_label.get(label)
                if whisker is None or whisker.value is None or not math.isfinite(whisker.value):
                    continue
                if whisker.low is not None and whisker.high is not None:
                    axes.plot([whisker.low, whisker.high], [position, position], color="#777777", linewidth=2)
                axes.plot([whisker.value], [position], marker="o", color=color, markersize=5)
            axes.set_yticks(range(len(labels)), labels)
            axes.set(title=heading, xlabel=x_label, ylim=(len(labels) - 0.5, -0.5))  # first group on top, as listed
        return _svg(figure, title)


def bars(title: str, labels: Sequence[str], values: Sequence[float], *, x_label: str,
         errors: Sequence[float] | None = None) -> str:
    """Horizontal bars, largest first (feature importance); negative values to the left of zero."""
    height = 0.9 + 0.26 * max(len(labels), 1)
    with _figure(6.4, height) as (figure, axes):
        colors = [CANDIDATE_COLOR if v >= 0 else "#d98c00" for v in values]
        axes.barh(list(labels), list(values), xerr=None if errors is None else list(errors), color=colors,
                  error_kw={"ecolor": "#555555", "capsize": 2})
        axes.axvline(0, color="#555555", linewidth=0.8)
        axes.invert_yaxis()
        axes.set(title=title, xlabel=x_label)
        return _svg(figure, title)
