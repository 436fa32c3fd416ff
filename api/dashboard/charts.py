"""Charts as SVG strings, drawn on the server in plain Python: no JavaScript, nothing fetched.

Each function takes plain numbers and returns one ``<svg>`` element with a ``<title>`` and a
``<desc>`` (screen readers read them; the page puts a table of the exact numbers under each chart).
Pure functions: the same data gives the same bytes, so pages are deterministic and testable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

WIDTH = 640
HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 40
FONT = 11
GRID = "#e5e5e5"
AXIS = "#888"
WARN = "#d98c00"
CRITICAL = "#c62828"
BREACH = CRITICAL
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    """One line (or one set of bars) with its legend name and colour."""

    name: str
    values: Sequence[float | None]
    color: str
    dash: str | None = None


@dataclass(frozen=True)
class Limit:
    """A horizontal (or vertical, in bar charts) reference line: a threshold the chart is judged by."""

    label: str
    value: float
    color: str = CRITICAL


# ----- scales -------------------------------------------------------------------------------------
def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5, 5 × 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def fmt(value: float | None, digits: int = 3) -> str:
    """Short number for labels and tables: ``–`` for missing, no trailing zeros."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    text = f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def _y_scale(ticks: list[float], top: float, bottom: float) -> Callable[[float], float]:
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1.0
    return lambda v: bottom - (v - low) / span * (bottom - top)


def _open(title: str, desc: str, width: int, height: int) -> tuple[str, list[str]]:
    ident = f"chart{next(_ids)}"
    head = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='100%' "
            f"role='img' aria-labelledby='{ident}-t {ident}-d' class='chart' font-size='{FONT}' "
            f"font-family='system-ui, sans-serif'><title id='{ident}-t'>{escape(title)}</title>"
            f"<desc id='{ident}-d'>{escape(desc)}</desc>")
    return ident, [head]


def _legend(parts: list[str], entries: Sequence[tuple[str, str, str | None]], x: float, y: float) -> None:
    for name, color, dash in entries:
        style = f" stroke-dasharray='{dash}'" if dash else ""
        parts.append(f"<line x1='{x:.1f}' y1='{y - 4:.1f}' x2='{x + 16:.1f}' y2='{y - 4:.1f}' stroke='{color}' "
                     f"stroke-width='3'{style}/><text x='{x + 20:.1f}' y='{y:.1f}'>{escape(name)}</text>")
        x += 28 + 6.5 * len(name)


def _y_axis(
    parts: list[str], ticks: list[float], y_of: Callable[[float], float], *, left: float, right: float, label: str
) -> None:
    for tick in ticks:
        y = y_of(tick)
        parts.append(f"<line x1='{left:.1f}' y1='{y:.1f}' x2='{right:.1f}' y2='{y:.1f}' stroke='{GRID}'/>"
                     f"<text x='{left - 4:.1f}' y='{y + 3.5:.1f}' text-anchor='end'>{fmt(tick)}</text>")
    if label:
        parts.append(f"<text x='12' y='{(y_of(ticks[0]) + y_of(ticks[-1])) / 2:.1f}' text-anchor='middle' "
                     f"transform='rotate(-90 12 {(y_of(ticks[0]) + y_of(ticks[-1])) / 2:.1f})'>{escape(label)}</text>")


def _limits(
    parts: list[str], limits: Sequence[Limit], y_of: Callable[[float], float], *, left: float, right: float
) -> None:
    for limit in limits:
        y = y_of(limit.value)
        parts.append(f"<line x1='{left:.1f}' y1='{y:.1f}' x2='{right:.1f}' y2='{y:.1f}' stroke='{limit.color}' "
                     f"stroke-dasharray='6 3' class='limit'/><text x='{right - 2:.1f}' y='{y - 3:.1f}' "
                     f"text-anchor='end' fill='{limit.color}'>{escape(limit.label)} {fmt(limit.value)}</text>")


@dataclass(frozen=True)
class _RowFrame:
    """The layout shared by the horizontal charts: one row per label, the value axis along x from 0."""

    left: float
    right: float
    top: float
    bottom: float
    height: int
    span: float

    def x_of(self, value: float) -> float:
        return self.left + value / self.span * (self.right - self.left)


_LABEL_WIDTH = 170


def _row_chart(title: str, desc: str, *, rows: int, row_height: int, ticks: list[float], width: int,
               x_label: str) -> tuple[_RowFrame, list[str]]:
    """A chart of one row per label: its frame, and the opened element with the x axis drawn."""
    height = MARGIN_TOP + row_height * rows + MARGIN_BOTTOM
    frame = _RowFrame(left=_LABEL_WIDTH, right=width - MARGIN_RIGHT, top=MARGIN_TOP, bottom=height - MARGIN_BOTTOM,
                      height=height, span=ticks[-1] or 1.0)
    _, parts = _open(title, desc or title, width, frame.height)
    _x_axis(parts, frame, ticks, x_label)
    return frame, parts


def _x_axis(parts: list[str], frame: _RowFrame, ticks: list[float], label: str) -> None:
    """Vertical grid lines with their values under the plot, and the axis label below them."""
    top, bottom = frame.top, frame.bottom
    for tick in ticks:
        x = frame.x_of(tick)
        parts.append(f"<line x1='{x:.1f}' y1='{top:.1f}' x2='{x:.1f}' y2='{bottom:.1f}' "
                     f"stroke='{GRID}'/><text x='{x:.1f}' y='{bottom + 14:.1f}' "
                     f"text-anchor='middle'>{fmt(tick)}</text>")
    if label:
        parts.append(f"<text x='{(frame.left + frame.right) / 2:.1f}' y='{bottom + 30:.1f}' text-anchor='middle'>"
                     f"{escape(label)}</text>")


def _close(parts: list[str], axis: tuple[float, float, float, float],
           legend: Sequence[tuple[str, str, str | None]], legend_x: float) -> str:
    """The base line (x1, y1, x2, y2) drawn over the data, the legend on top, and the closed element."""
    x1, y1, x2, y2 = axis
    parts.append(f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='{AXIS}'/>")
    _legend(parts, legend, legend_x, 16)
    parts.append("</svg>")
    return "".join(parts)


def empty(title: str, reason: str, width: int = WIDTH, height: int = 80) -> str:
    """A placeholder with the reason, in place of a chart that has no data yet."""
    _, parts = _open(title, f"no data yet: {reason}", width, height)
    parts.append(f"<rect x='0.5' y='0.5' width='{width - 1}' height='{height - 1}' fill='#fafafa' stroke='{GRID}'/>"
                 f"<text x='{width / 2:.1f}' y='{height / 2 + 4:.1f}' text-anchor='middle' fill='#666'>"
                 f"{escape(title)}: no data yet</text><text x='{width / 2:.1f}' y='{height / 2 + 20:.1f}' "
                 f"text-anchor='middle' fill='#888' font-size='10'>{escape(_shorten(reason, 110))}</text></svg>")
    return "".join(parts)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----- charts -------------------------------------------------------------------------------------
SPLIT_MIN_STEPS = 24
"""A gap in a time series splits its axis only if it is longer than this many steps (a day of hours)…"""
SPLIT_MIN_SHARE = 0.25
"""… and longer than this share of the whole range: a night or a weekend without traffic does not."""
BREAK_WIDTH = 18
"""Pixels between two spans of a split time axis (where the break mark is drawn)."""
MIN_SPAN_SHARE = 0.15
"""Least share of the plot width a span of a split axis gets, however short it is."""
TICK_LABEL_ROOM = 120
"""Pixels a time label needs: a narrower span of a split axis is labelled at its start only."""


@dataclass(frozen=True)
class _Span:
    """One stretch of a split time axis: its first and last moment and where it is drawn."""

    first: datetime
    last: datetime
    left: float
    right: float

    def x_of(self, moment: datetime) -> float:
        seconds = (self.last - self.first).total_seconds()
        if seconds <= 0:
            return (self.left + self.right) / 2
        return self.left + (moment - self.first).total_seconds() / seconds * (self.right - self.left)


def time_spans(times: Sequence[datetime], step_seconds: float = 3600.0) -> list[tuple[datetime, datetime]]:
    """``times`` (sorted) cut where they are far apart: a gap longer than ``SPLIT_MIN_STEPS`` steps and than
    ``SPLIT_MIN_SHARE`` of the whole range (a replay's simulated timeline months before real traffic).
    Each span is (first, last); one span when nothing is far apart."""
    if not times:
        return []
    whole = (times[-1] - times[0]).total_seconds()
    least = max(SPLIT_MIN_STEPS * step_seconds, SPLIT_MIN_SHARE * whole)
    spans = []
    first = times[0]
    for before, after in itertools.pairwise(times):
        if (after - before).total_seconds() > least:
            spans.append((first, before))
            first = after
    spans.append((first, times[-1]))
    return spans


def _layout_spans(spans: list[tuple[datetime, datetime]], left: float, right: float) -> list[_Span]:
    """Pixel ranges for ``spans``: proportional to their lengths, each at least ``MIN_SPAN_SHARE`` of the plot."""
    usable = right - left - BREAK_WIDTH * (len(spans) - 1)
    lengths = [max((last - first).total_seconds(), 0.0) for first, last in spans]
    total = sum(lengths) or 1.0
    shares = [max(length / total, MIN_SPAN_SHARE) for length in lengths]
    scale = usable / sum(shares)
    laid_out, x = [], left
    for (first, last), share in zip(spans, shares, strict=True):
        laid_out.append(_Span(first, last, x, x + share * scale))
        x += share * scale + BREAK_WIDTH
    return laid_out


def _time_ticks(parts: list[str], spans: list[_Span], bottom: float, *, with_year: bool) -> None:
    """Tick labels under each span (more where a span is wide), and a break mark between spans."""
    label = "%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M"
    for index, span in enumerate(spans):
        seconds, room = (span.last - span.first).total_seconds(), span.right - span.left
        count_ = 1 if seconds <= 0 or room < TICK_LABEL_ROOM else min(5, int(room // TICK_LABEL_ROOM) + 1)
        for i in range(count_):
            moment = span.first + (span.last - span.first) * (i / (count_ - 1) if count_ > 1 else 0)
            x = span.x_of(moment)
            anchor = ("middle" if seconds <= 0 or 0 < i < count_ - 1 else "start" if i == 0 else "end")
            parts.append(f"<line x1='{x:.1f}' y1='{bottom:.1f}' x2='{x:.1f}' y2='{bottom + 4:.1f}' stroke='{AXIS}'/>"
                         f"<text x='{x:.1f}' y='{bottom + 16:.1f}' text-anchor='{anchor}'>{moment:{label}}</text>")
        parts.append(f"<line x1='{span.left:.1f}' y1='{bottom}' x2='{span.right:.1f}' y2='{bottom}' stroke='{AXIS}'/>")
        if index:
            gap = span.first - spans[index - 1].last
            middle = span.left - BREAK_WIDTH / 2
            marks = "".join(f"<line x1='{middle + dx - 2:.1f}' y1='{bottom + 5:.1f}' x2='{middle + dx + 2:.1f}' "
                            f"y2='{bottom - 5:.1f}' stroke='{AXIS}'/>" for dx in (-3, 3))
            parts.append(f"<g class='axis-break'><title>{_duration(gap)} without data</title>{marks}</g>")


def _duration(gap: timedelta) -> str:
    days = gap.total_seconds() / 86_400
    return f"{days:,.0f} days" if days >= 2 else f"{gap.total_seconds() / 3600:,.0f} hours"


def time_series(
    title: str,
    times: Sequence[datetime],
    series: Sequence[Series],
    *,
    y_label: str = "",
    limits: Sequence[Limit] = (),
    desc: str = "",
    step_seconds: float = 3600.0,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines over time (hours): one polyline per series, broken where a value is missing or where
    points are more than one ``step_seconds`` apart (no traffic: nothing to draw a line through).

    Stretches of time far apart (:func:`time_spans`: a replay's simulated weeks and today's traffic)
    get an axis piece each, with a break mark between them, instead of one axis squeezing each into
    a sliver."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not times or not values:
        return empty(title, "no points" if not times else "every value is missing")
    values += [limit.value for limit in limits]
    ticks = nice_ticks(min([0.0, *values]), max([*values, 1e-9]))
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    y_of = _y_scale(ticks, top, bottom)
    spans = _layout_spans(time_spans(times, step_seconds), left, right)

    def x_of(moment: datetime) -> float:
        return next(s for s in spans if moment <= s.last).x_of(moment)

    pieces = "" if len(spans) == 1 else f" in {len(spans)} separate spans"
    _, parts = _open(title, desc or f"{title}: {len(times)} hourly points from {times[0]:%Y-%m-%d %H:%M} "
                     f"to {times[-1]:%Y-%m-%d %H:%M} UTC{pieces}", width, height)
    _y_axis(parts, ticks, y_of, left=left, right=right, label=y_label)
    _time_ticks(parts, spans, bottom, with_year=times[0].year != times[-1].year)
    _limits(parts, limits, y_of, left=left, right=right)
    for line in series:
        dash = f" stroke-dasharray='{line.dash}'" if line.dash else ""
        for segment in _segments(times, line.values, step_seconds):
            points = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in segment)
            if len(segment) == 1:
                t, v = segment[0]
                parts.append(f"<circle cx='{x_of(t):.1f}' cy='{y_of(v):.1f}' r='2.5' fill='{line.color}'/>")
            else:
                parts.append(f"<polyline points='{points}' fill='none' stroke='{line.color}' stroke-width='1.8'"
                             f"{dash} class='series'/>")
    _legend(parts, [(s.name, s.color, s.dash) for s in series], left, 16)
    parts.append("</svg>")
    return "".join(parts)


def _segments(
    times: Sequence[datetime], values: Sequence[float | None], step_seconds: float
) -> list[list[tuple[datetime, float]]]:
    segments: list[list[tuple[datetime, float]]] = [[]]
    previous: datetime | None = None
    for moment, value in zip(times, values, strict=False):
        apart = previous is not None and (moment - previous).total_seconds() > step_seconds * 1.5
        if (value is None or not math.isfinite(value) or apart) and segments[-1]:
            segments.append([])
        if value is not None and math.isfinite(value):
            segments[-1].append((moment, float(value)))
        previous = moment
    return [s for s in segments if s]


def bars_against_limits(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    limits: Sequence[Sequence[Limit]],
    severities: Sequence[str | None],
    *,
    x_label: str = "",
    desc: str = "",
    no_values: str = "no values yet",
    width: int = WIDTH,
) -> str:
    """Horizontal bars, one per label, each with its own warn / critical tick marks.

    Used for drift: each feature's statistic (KS D or PSI) against the limits of its kind. When no
    label has a value, the chart is replaced by ``no_values`` (limit lines alone tell nothing).
    """
    if not labels:
        return empty(title, "no features")
    if all(v is None or not math.isfinite(v) for v in values):
        return empty(title, no_values)
    row_height = 22
    high = max([*(v for v in values if v is not None), *(lim.value for row in limits for lim in row), 1e-9])
    ticks = nice_ticks(0.0, high * 1.05)
    frame, parts = _row_chart(title, desc, rows=len(labels), row_height=row_height, ticks=ticks, width=width,
                              x_label=x_label)
    left, top, bottom, x_of = frame.left, frame.top, frame.bottom, frame.x_of
    for i, (label, value, row_limits, severity) in enumerate(zip(labels, values, limits, severities, strict=True)):
        y = top + i * row_height
        color = {"critical": CRITICAL, "warn": WARN}.get(severity or "", "#4a78b5")
        parts.append(f"<text x='{left - 6}' y='{y + 15:.1f}' text-anchor='end'>{escape(label)}</text>")
        if value is not None and math.isfinite(value):
            parts.append(f"<rect x='{left}' y='{y + 4:.1f}' width='{max(x_of(value) - left, 1):.1f}' height='14' "
                         f"fill='{color}' class='bar'><title>{escape(label)}: {fmt(value, 4)}"
                         f"{' (' + severity + ')' if severity else ''}</title></rect>"
                         f"<text x='{x_of(value) + 4:.1f}' y='{y + 15:.1f}'>{fmt(value)}</text>")
        for limit in row_limits:
            x = x_of(limit.value)
            parts.append(f"<line x1='{x:.1f}' y1='{y + 1:.1f}' x2='{x:.1f}' y2='{y + 21:.1f}' "
                         f"stroke='{limit.color}' stroke-width='2' class='limit'><title>{escape(limit.label)} "
                         f"{fmt(limit.value)}</title></line>")
    return _close(parts, (left, top, left, bottom), [("warn limit", WARN, None), ("critical limit", CRITICAL, None)],
                  left)


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    desc: str = "",
    width: int = WIDTH,
    height: int = HEIGHT + 20,
) -> str:
    """Vertical bars side by side per category (histograms: training vs production shares)."""
    if not categories:
        return empty(title, "no bins")
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(0.0, max([*values, 1e-9]))
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM - 14
    y_of = _y_scale(ticks, top, bottom)
    slot = (right - left) / len(categories)
    bar = slot * 0.8 / max(len(series), 1)
    _, parts = _open(title, desc or title, width, height)
    _y_axis(parts, ticks, y_of, left=left, right=right, label=y_label)
    for i, category in enumerate(categories):
        x0 = left + i * slot + slot * 0.1
        for j, line in enumerate(series):
            value = line.values[i]
            if value is None:
                continue
            y = y_of(value)
            parts.append(f"<rect x='{x0 + j * bar:.1f}' y='{y:.1f}' width='{bar - 1:.1f}' "
                         f"height='{max(bottom - y, 0):.1f}' fill='{line.color}' class='bar'><title>"
                         f"{escape(category)}, {escape(line.name)}: {fmt(value, 4)}</title></rect>")
        anchor_x = left + (i + 0.5) * slot
        short = category if len(category) <= 14 else category[:13] + "…"
        parts.append(f"<text x='{anchor_x:.1f}' y='{bottom + 13:.1f}' text-anchor='end' "
                     f"transform='rotate(-25 {anchor_x:.1f} {bottom + 13:.1f})'>{escape(short)}</text>")
    return _close(parts, (left, bottom, right, bottom), [(s.name, s.color, None) for s in series], left)


@dataclass(frozen=True)
class Interval:
    """One group's value with its expected interval (whisker) and expected value (tick)."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    expected: float | None
    breach: bool = False


def intervals(
    title: str,
    rows: Sequence[Interval],
    *,
    x_label: str = "",
    desc: str = "",
    width: int = WIDTH,
) -> str:
    """Per group: a dot for the observed value, a whisker for its interval, a tick for the expectation."""
    if not rows:
        return empty(title, "no groups")
    row_height = 26
    values = [v for r in rows for v in (r.value, r.low, r.high, r.expected) if v is not None]
    ticks = nice_ticks(0.0, max([*values, 1e-9]))
    frame, parts = _row_chart(title, desc, rows=len(rows), row_height=row_height, ticks=ticks, width=width,
                              x_label=x_label)
    left, top, bottom, x_of = frame.left, frame.top, frame.bottom, frame.x_of
    for i, row in enumerate(rows):
        y = top + i * row_height + row_height / 2
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{escape(row.label)}</text>")
        if row.low is not None and row.high is not None:
            parts.append(f"<line x1='{x_of(row.low):.1f}' y1='{y:.1f}' x2='{x_of(row.high):.1f}' y2='{y:.1f}' "
                         f"stroke='#777' stroke-width='2' class='whisker'/>"
                         f"<line x1='{x_of(row.low):.1f}' y1='{y - 6:.1f}' x2='{x_of(row.low):.1f}' y2='{y + 6:.1f}' "
                         f"stroke='#777'/><line x1='{x_of(row.high):.1f}' y1='{y - 6:.1f}' x2='{x_of(row.high):.1f}' "
                         f"y2='{y + 6:.1f}' stroke='#777'/>")
        if row.expected is not None:
            parts.append(f"<line x1='{x_of(row.expected):.1f}' y1='{y - 8:.1f}' x2='{x_of(row.expected):.1f}' "
                         f"y2='{y + 8:.1f}' stroke='#222' stroke-width='2'/>")
        if row.value is not None:
            color = BREACH if row.breach else "#1f5fa8"
            parts.append(f"<circle cx='{x_of(row.value):.1f}' cy='{y:.1f}' r='5' fill='{color}' class='dot'><title>"
                         f"{escape(row.label)}: {fmt(row.value, 4)}"
                         f"{' (outside the interval)' if row.breach else ''}</title></circle>")
    return _close(parts, (left, top, left, bottom), [("observed", "#1f5fa8", None), ("interval", "#777", None),
                                                     ("expected", "#222", None), ("outside", BREACH, None)], left)


def dots(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_label: str = "",
    desc: str = "",
    width: int = WIDTH,
) -> str:
    """Per label, one marker per series on a shared axis (FPR per group: estimated, realised, test split)."""
    if not labels:
        return empty(title, "no groups")
    row_height = 26
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(0.0, max([*values, 1e-9]))
    frame, parts = _row_chart(title, desc, rows=len(labels), row_height=row_height, ticks=ticks, width=width,
                              x_label=x_label)
    left, right, top, bottom, x_of = frame.left, frame.right, frame.top, frame.bottom, frame.x_of
    for i, label in enumerate(labels):
        y = top + i * row_height + row_height / 2
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{escape(label)}</text>"
                     f"<line x1='{left}' y1='{y:.1f}' x2='{right}' y2='{y:.1f}' stroke='#f2f2f2'/>")
        for j, line in enumerate(series):
            value = line.values[i]
            if value is None or not math.isfinite(value):
                continue
            offset = (j - (len(series) - 1) / 2) * 5
            parts.append(f"<circle cx='{x_of(value):.1f}' cy='{y + offset:.1f}' r='4.5' fill='{line.color}' "
                         f"class='dot'><title>{escape(label)}, {escape(line.name)}: {fmt(value, 4)}</title></circle>")
    return _close(parts, (left, top, left, bottom), [(s.name, s.color, None) for s in series], left)


PALETTE = ("#1f5fa8", "#2e7d32", "#d98c00", "#6a1b9a", "#00838f", "#c62828", "#5d4037", "#9e9d24")
"""Colours of charts with one line per cohort, in turn."""


def curves(
    title: str,
    xs: Sequence[int],
    series: Sequence[Series],
    *,
    x_label: str = "",
    y_label: str = "",
    desc: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines over a whole-number axis (months on book): one per series, a value per ``xs`` (None: not
    observed, the line stops there)."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not xs or not values:
        return empty(title, "no points")
    ticks = nice_ticks(0.0, max([*values, 1e-9]))
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP + 14 * ((len(series) - 1) // 6), height - MARGIN_BOTTOM
    y_of = _y_scale(ticks, top, bottom)
    low, high = min(xs), max(xs)

    def x_of(value: float) -> float:
        return (left + right) / 2 if high == low else left + (value - low) / (high - low) * (right - left)

    _, parts = _open(title, desc or title, width, height)
    _y_axis(parts, ticks, y_of, left=left, right=right, label=y_label)
    step = max(1, math.ceil((high - low + 1) / 12))
    for value in range(low, high + 1, step):
        x = x_of(value)
        parts.append(f"<line x1='{x:.1f}' y1='{bottom:.1f}' x2='{x:.1f}' y2='{bottom + 4:.1f}' stroke='{AXIS}'/>"
                     f"<text x='{x:.1f}' y='{bottom + 16:.1f}' text-anchor='middle'>{value}</text>")
    if x_label:
        parts.append(f"<text x='{(left + right) / 2:.1f}' y='{bottom + 32:.1f}' text-anchor='middle'>"
                     f"{escape(x_label)}</text>")
    for line in series:
        points = [(x, v) for x, v in zip(xs, line.values, strict=True) if v is not None and math.isfinite(v)]
        if len(points) == 1:
            parts.append(f"<circle cx='{x_of(points[0][0]):.1f}' cy='{y_of(points[0][1]):.1f}' r='3' "
                         f"fill='{line.color}'/>")
        elif points:
            drawn = " ".join(f"{x_of(x):.1f},{y_of(v):.1f}" for x, v in points)
            parts.append(f"<polyline points='{drawn}' fill='none' stroke='{line.color}' stroke-width='1.8' "
                         f"class='series'><title>{escape(line.name)}</title></polyline>")
    parts.append(f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='{AXIS}'/>")
    for row, start in enumerate(range(0, len(series), 6)):
        _legend(parts, [(s.name, s.color, s.dash) for s in series[start:start + 6]], left, 16 + 14 * row)
    parts.append("</svg>")
    return "".join(parts)
