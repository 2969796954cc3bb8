"""Small inline SVG charts, written by hand rather than by a charting library.

Why our own code: a report must open on an isolated network (no CDN, no script), be the same
bytes for the same input, and stay small. Plotting libraries either need JavaScript in the page
(Plotly, Vega, ECharts: hundreds of KB each, inlined) or write SVG with random ids and
timestamps (matplotlib), and add a heavy dependency. The four chart kinds a report needs — bars,
diverging bars, a quadrant scatter and lines — take ~300 lines here. Every coordinate is printed
with one decimal and every mark carries ``class="mark"`` and a ``<title>`` (the tooltip a browser
shows without script), which the browser tests count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "diverging_bars", "line_chart", "quadrant_scatter"]

_FONT = 11
_GAIN, _LOSS, _BAR, _REF = "#2e7d32", "#c62828", "#3b6ea8", "#888"
_SERIES = ("#3b6ea8", "#e0822b", "#6a9f3a", "#8e5ba6")


def _n(v: float) -> str:
    """A coordinate: one decimal, no ``-0.0``."""
    text = f"{v:.1f}"
    return "0.0" if text == "-0.0" else text


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _ticks(lo: float, hi: float) -> tuple[float, float, list[float]]:
    """Axis limits widened to whole steps, and the tick values between them."""
    if hi <= lo:
        hi = lo + 1.0
    step = _nice_step(hi - lo)
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    count = round((stop - start) / step)
    return start, stop, [start + i * step for i in range(count + 1)]


def _tick_text(v: float) -> str:
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{round(v, 6):g}"


def _open(name: str, title: str, width: int, height: int, marks: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{name}" '
        f'data-marks="{marks}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<rect class="bg" x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]


def _text(x: float, y: float, s: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{_FONT}"'
        f"{extra}>{escape(s)}</text>"
    )


def _y_axis(lo: float, hi: float, ticks: list[float], left: float, right: float, y) -> list[str]:
    out = []
    for t in ticks:
        yy = y(t)
        out.append(
            f'<line x1="{_n(left)}" y1="{_n(yy)}" x2="{_n(right)}" y2="{_n(yy)}" stroke="#e5e5e5"/>'
        )
        out.append(_text(left - 4, yy + 4, _tick_text(t), "end"))
    return out


def bar_chart(
    name: str,
    title: str,
    items: Sequence[tuple[str, float, str]],
    *,
    reference: tuple[str, float] | None = None,
    width: int = 760,
    height: int = 300,
) -> str:
    """Vertical bars, one per ``(label, value, tooltip)``, with an optional dashed reference
    line ``(label, value)`` (the region's value)."""
    left, right, top, bottom = 56.0, width - 12.0, 16.0, height - 70.0
    values = [v for _, v, _ in items]
    if reference is not None:
        values.append(reference[1])
    lo, hi, ticks = _ticks(min(0.0, *values) if values else 0.0, max(values, default=1.0))

    def y(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    out = _open(name, title, width, height, len(items))
    out += _y_axis(lo, hi, ticks, left, right, y)
    slot = (right - left) / max(len(items), 1)
    bar = min(max(slot * 0.7, 1.0), 44.0)
    for i, (lab, v, tip) in enumerate(items):
        x = left + i * slot + (slot - bar) / 2
        y0, y1 = sorted((y(0.0), y(v)))
        out.append(
            f'<rect class="mark" x="{_n(x)}" y="{_n(y0)}" width="{_n(bar)}" '
            f'height="{_n(max(y1 - y0, 0.5))}" fill="{_BAR}"><title>{escape(tip)}</title></rect>'
        )
        cx = x + bar / 2
        out.append(
            _text(
                cx, bottom + 12, lab, "end", f' transform="rotate(-45 {_n(cx)} {_n(bottom + 12)})"'
            )
        )
    if reference is not None:
        ry = y(reference[1])
        out.append(
            f'<line class="reference" x1="{_n(left)}" y1="{_n(ry)}" x2="{_n(right)}" '
            f'y2="{_n(ry)}" stroke="{_REF}" stroke-dasharray="5 4"/>'
        )
        out.append(_text(right, ry - 4, reference[0], "end", f' fill="{_REF}"'))
    out.append(
        f'<line x1="{_n(left)}" y1="{_n(y(0.0))}" x2="{_n(right)}" y2="{_n(y(0.0))}" '
        f'stroke="#333"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def diverging_bars(
    name: str,
    title: str,
    items: Sequence[tuple[str, float, str]],
    *,
    width: int = 760,
    row: int = 20,
) -> str:
    """Horizontal bars around zero (gains to the right in green, losses to the left in red)."""
    height = int(row * max(len(items), 1) + 44)
    # room on the right for the last tick's label, centred on the edge
    left, right, top = 150.0, width - 40.0, 12.0
    values = [v for _, v, _ in items]
    lo, hi, ticks = _ticks(
        min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0
    )

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    out = _open(name, title, width, height, len(items))
    bottom = top + row * len(items)
    for t in ticks:
        out.append(
            f'<line x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}" '
            f'stroke="#e5e5e5"/>'
        )
        out.append(_text(x(t), bottom + 14, _tick_text(t)))
    for i, (lab, v, tip) in enumerate(items):
        yy = top + i * row
        x0, x1 = sorted((x(0.0), x(v)))
        out.append(
            f'<rect class="mark" x="{_n(x0)}" y="{_n(yy + 3)}" width="{_n(max(x1 - x0, 0.5))}" '
            f'height="{_n(row - 6)}" fill="{_GAIN if v >= 0 else _LOSS}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        out.append(_text(left - 6, yy + row / 2 + 4, lab, "end"))
    out.append(
        f'<line x1="{_n(x(0.0))}" y1="{_n(top)}" x2="{_n(x(0.0))}" y2="{_n(bottom)}" '
        f'stroke="#333"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def quadrant_scatter(
    name: str,
    title: str,
    points: Sequence[tuple[str, float, float, str]],
    *,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 420,
) -> str:
    """One labelled point per ``(label, x, y, tooltip)``, with dashed lines at x = 1 and y = 1
    (the region's level) dividing the plane into four quadrants."""
    left, right, top, bottom = 56.0, width - 16.0, 16.0, height - 44.0
    xs = [p[1] for p in points] + [1.0]
    ys = [p[2] for p in points] + [1.0]
    # symmetric room around 1 so that the quadrants read at a glance
    dx = max(abs(v - 1.0) for v in xs) * 1.15 or 0.1
    dy = max(abs(v - 1.0) for v in ys) * 1.15 or 0.1
    x_lo, x_hi, x_ticks = _ticks(1.0 - dx, 1.0 + dx)
    y_lo, y_hi, y_ticks = _ticks(1.0 - dy, 1.0 + dy)

    def x(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    def y(v: float) -> float:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    out = _open(name, title, width, height, len(points))
    out += _y_axis(y_lo, y_hi, y_ticks, left, right, y)
    for t in x_ticks:
        out.append(_text(x(t), bottom + 14, _tick_text(t)))
    out.append(
        f'<line class="reference" x1="{_n(x(1.0))}" y1="{_n(top)}" x2="{_n(x(1.0))}" '
        f'y2="{_n(bottom)}" stroke="{_REF}" stroke-dasharray="5 4"/>'
    )
    out.append(
        f'<line class="reference" x1="{_n(left)}" y1="{_n(y(1.0))}" x2="{_n(right)}" '
        f'y2="{_n(y(1.0))}" stroke="{_REF}" stroke-dasharray="5 4"/>'
    )
    for lab, px, py, tip in points:
        worse = px > 1.0 and py > 1.0
        out.append(
            f'<circle class="mark" cx="{_n(x(px))}" cy="{_n(y(py))}" r="5" '
            f'fill="{_LOSS if worse else _BAR}" fill-opacity="0.8">'
            f"<title>{escape(tip)}</title></circle>"
        )
        out.append(_text(x(px) + 7, y(py) - 6, lab, "start"))
    out.append(_text((left + right) / 2, height - 8, x_label))
    out.append(
        _text(
            14,
            (top + bottom) / 2,
            y_label,
            "middle",
            f' transform="rotate(-90 14 {_n((top + bottom) / 2)})"',
        )
    )
    out.append("</svg>")
    return "\n".join(out)


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    width: int = 760,
    height: int = 300,
) -> str:
    """Lines over ``labels`` (months), one per ``(name, values)``; each known value is a mark
    (a point with its tooltip), a missing one breaks the line."""
    left, right, top, bottom = 80.0, width - 130.0, 16.0, height - 40.0
    known = [v for _, vals in series for v in vals if v is not None]
    lo, hi, ticks = _ticks(min(0.0, *known) if known else 0.0, max(known, default=1.0))

    def y(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    step = (right - left) / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + i * step if len(labels) > 1 else (left + right) / 2

    out = _open(name, title, width, height, len(known))
    out += _y_axis(lo, hi, ticks, left, right, y)
    every = max(1, math.ceil(len(labels) / 8))
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(_text(x(i), bottom + 16, lab))
    for k, (sname, vals) in enumerate(series):
        color = _SERIES[k % len(_SERIES)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{_n(x(i))},{_n(y(v))}")
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                    f'stroke-width="2"/>'
                )
        for i, v in enumerate(vals):
            if v is not None:
                out.append(
                    f'<circle class="mark" cx="{_n(x(i))}" cy="{_n(y(v))}" r="3" '
                    f'fill="{color}"><title>{escape(f"{sname} {labels[i]}: {v:,.2f}")}'
                    "</title></circle>"
                )
        ly = top + 8 + k * 18
        out.append(
            f'<rect x="{_n(right + 14)}" y="{_n(ly - 8)}" width="12" height="10" fill="{color}"/>'
        )
        out.append(_text(right + 30, ly + 1, sname, "start"))
    out.append("</svg>")
    return "\n".join(out)
