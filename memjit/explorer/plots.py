"""Plots as inline SVG, drawn on the server: no script, nothing fetched, readable without CSS.

Two kinds: step lines over time (usefulness of each worker: it changes only at events, and
stays put between them) and bars (SWT minted per batch). Colours come from one fixed palette,
in series order, so that a worker keeps its colour between the plot and its legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d %H:%M")


def _frame(title: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    """The SVG element around a plot's shapes, with a legend row under it."""
    rows = (len(legend) + 3) // 4
    height = HEIGHT + 18 * rows
    for i, (label, colour) in enumerate(legend):
        x, y = LEFT + (i % 4) * 150, HEIGHT + 4 + 18 * (i // 4)
        body.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{x + 16}" y="{y + 10}">{escape(label)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" '
            f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'font-family="sans-serif" font-size="11"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (1 for 0), so
    that the axis's quarter steps are round numbers."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    return next(m * scale for m in (1, 2, 2.5, 5, 10) if m * scale >= value * (1 - 1e-12))


def _axes(y_max: float) -> list[str]:
    """Horizontal grid lines at five levels of 0..y_max, labelled."""
    out = []
    for i in range(5):
        value = round(y_max * i / 4, 12)
        y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * i / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#ddd"/><text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{value:g}</text>')
    return out


def step_lines(title: str, series: Mapping[str, Sequence[tuple[float, float]]],
               labels: Mapping[str, str], y_max: float = 1.0) -> str:
    """Each series (key -> (time, value) points, oldest first) as a step line over a shared
    time axis; `labels` names the series in the legend. The value axis runs from 0 to a round
    number just above the largest value, at most `y_max`."""
    points = [p for s in series.values() for p in s]
    y_max = min(y_max, nice_ceiling(max((v for _, v in points), default=y_max)))
    if not points:
        return _frame(title, _axes(y_max) + [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data yet</text>'],
            [])
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    span = (t1 - t0) or 1.0

    def xy(t: float, v: float) -> tuple[float, float]:
        return (LEFT + (WIDTH - LEFT - RIGHT) * (t - t0) / span,
                HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * min(v, y_max) / y_max)

    body = _axes(y_max)
    body += [f'<text x="{LEFT}" y="{HEIGHT - 8}">{_when(t0)} UTC</text>',
             f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{_when(t1)} UTC</text>']
    legend = []
    for i, (key, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path, last = [], None
        for t, v in pts:
            x, y = xy(t, v)
            if last is not None:
                path.append(f"{x:.1f},{last:.1f}")  # hold the previous value until now
            path.append(f"{x:.1f},{y:.1f}")
            last = y
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(path)}" data-series="{escape(key)}"/>')
        legend.append((labels.get(key, key[:12]), colour))
    return _frame(title, body, legend)


def bars(title: str, values: Sequence[tuple[str, float]], unit: str = "") -> str:
    """One bar per (label, value), in order, labelled under it and valued above it."""
    if not values:
        return _frame(title, _axes(1.0) + [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data yet</text>'],
            [])
    top = nice_ceiling(max(v for _, v in values))
    slot = (WIDTH - LEFT - RIGHT) / len(values)
    body = _axes(top)
    for i, (label, value) in enumerate(values):
        h = (HEIGHT - TOP - BOTTOM) * value / top
        x = LEFT + slot * i + slot * 0.15
        body.append(f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(label)}: '
                    f'{value:g} {escape(unit)}</title></rect>'
                    f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
                    f'{escape(label)}</text>'
                    f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM - h - 3:.1f}" '
                    f'text-anchor="middle">{value:g}</text>')
    return _frame(title, body, [])
