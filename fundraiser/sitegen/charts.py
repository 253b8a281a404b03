"""Bar charts as inline SVG, drawn at build time: no chart script runs in the browser.

Each chart is an image to assistive technology (role="img" with a <title> and
a <desc> that sums it up); the page puts the full numbers in a table beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 44


@dataclass(frozen=True)
class Point:
    label: str  # the x-axis label: a date or a band
    value: int  # what the bar's height shows (minor units, or a count)
    text: str  # the value as a person reads it


def nice_ceiling(value: int) -> int:
    """A round number at or above value, for the top of the y axis."""
    if value <= 0:
        return 1
    magnitude = int(10 ** (len(str(value)) - 1))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _divisions(top: int) -> int:
    """How many gridline steps split top into whole numbers (4 if it can)."""
    return next(d for d in (4, 5, 2, 1) if top % d == 0)


def _fmt(number: float) -> str:
    return f"{number:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    description: str,
    axis_label: Callable[[int], str],
    max_labels: int = 8,
    highest: int | None = None,
) -> Markup:
    """One SVG bar chart; axis_label formats a y value for the gridlines. Charts meant
    to be compared pass the same `highest`, so their axes share one scale."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tallest = max((p.value for p in points), default=0)
    top = nice_ceiling(tallest if highest is None else max(highest, tallest))
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'focusable="false" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        '<g class="chart-grid">',
    ]
    steps = _divisions(top)
    for index in range(steps + 1):
        value = top * index // steps
        y = TOP + plot_h - plot_h * index / steps
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end">'
            f"{escape(axis_label(value))}</text>"
        )
    parts.append("</g>")
    count = len(points)
    if count:
        slot = plot_w / count
        gap = slot * 0.2 if slot > 3 else 0
        every = max(1, -(-count // max_labels))  # label at most max_labels bars
        parts.append('<g class="chart-bars">')
        for index, point in enumerate(points):
            height = plot_h * point.value / top
            x = LEFT + slot * index + gap / 2
            y = TOP + plot_h - height
            parts.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(slot - gap)}" '
                f'height="{_fmt(height)}"><title>{escape(point.label)}: '
                f"{escape(point.text)}</title></rect>"
            )
        parts.append('</g><g class="chart-labels">')
        for index, point in enumerate(points):
            if index % every == 0:
                x = LEFT + slot * index + slot / 2
                parts.append(
                    f'<text x="{_fmt(x)}" y="{HEIGHT - BOTTOM + 18}" '
                    f'text-anchor="middle">{escape(point.label)}</text>'
                )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
