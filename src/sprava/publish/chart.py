"""Charts as SVG, drawn when the site is built: no script, no font, nothing fetched.

Two kinds: horizontal bars (counts by region, by violation type) and columns over time,
stacked by series (incidents by month and status). Each is a standalone SVG document
(served as a file and shown with ``<img>``, where browsers run no script and load
nothing), with a ``<title>`` and a ``<desc>`` for screen readers; every bar carries its
count in ``data-value`` and in a ``<title>``, so that the page's table and the picture
can be checked against each other. All text is escaped; colours are presentation
attributes, so no stylesheet is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', Arial, sans-serif"
INK, GRID, BAR = "#1d1d1f", "#d5d5d9", "#0072b2"
#: Okabe and Ito's colours, told apart with every common colour-vision deficiency.
SERIES_COLOURS = ("#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#0072b2", "#d55e00")
_CHAR_PX = 8.0  # a generous average advance at 13 px (Cyrillic included), to size labels
MAX_LABEL_CHARS = 40


@dataclass(frozen=True)
class Svg:
    """A chart: the SVG document and its size in CSS pixels."""

    text: str
    width: int
    height: int


@dataclass(frozen=True)
class Series:
    """One stacked series of a column chart: its name and one value per column."""

    name: str
    values: tuple[int, ...]


def _text(value: str) -> str:
    return escape(value)


def _attr(value: str) -> str:
    return quoteattr(value)


def _short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """Round axis values from 0 to at least ``top``: steps of 1, 2 or 5 × 10ⁿ."""
    if top <= 0:
        return [0, 1]
    raw = top / most
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    last = math.ceil(top / step) * step
    return list(range(0, last + 1, step))


def _document(width: float, height: float, title: str, desc: str, body: list[str]) -> Svg:
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
            f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'role="img" aria-labelledby="chart-title chart-desc" font-family={_attr(FONT)} '
            f'font-size="13" fill="{INK}">\n'
            f'<title id="chart-title">{_text(title)}</title>\n'
            f'<desc id="chart-desc">{_text(desc)}</desc>\n'
            f'<rect width="100%" height="100%" fill="#ffffff"/>\n')
    return Svg(head + "\n".join(body) + "\n</svg>\n", round(width), round(height))


def bar_chart(title: str, bars: Sequence[tuple[str, int]], *, desc: str,
              empty: str, width: int = 720) -> Svg:
    """Horizontal bars, one per (label, count), in the order given."""
    label_px = min(MAX_LABEL_CHARS, max((len(label) for label, _ in bars), default=4)) * _CHAR_PX
    left, right, top, row = 12 + label_px + 8, 56, 16, 26
    height = top + max(1, len(bars)) * row + 30
    plot = width - left - right
    body: list[str] = []
    if not bars:
        body.append(f'<text x="{width / 2:.0f}" y="{top + 20}" text-anchor="middle">'
                    f'{_text(empty)}</text>')
        return _document(width, height, title, desc, body)
    ticks = nice_ticks(max(count for _, count in bars))
    scale = plot / ticks[-1]
    axis_y = top + len(bars) * row
    for tick in ticks:
        x = left + tick * scale
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" '
                    f'stroke="{GRID}" stroke-width="1"/>')
        body.append(f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle" '
                    f'class="tick">{tick}</text>')
    for i, (label, count) in enumerate(bars):
        y = top + i * row
        length = count * scale
        body.append(f'<g class="bar"><title>{_text(label)}: {count}</title>'
                    f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">'
                    f'{_text(_short(label))}</text>'
                    f'<rect x="{left}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
                    f'fill="{BAR}" data-label={_attr(label)} data-value="{count}"/>'
                    f'<text x="{left + length + 6:.1f}" y="{y + 17}">{count}</text></g>')
    return _document(width, height, title, desc, body)


def column_chart(title: str, columns: Sequence[str], series: Sequence[Series], *,
                 desc: str, empty: str, width: int = 720, height: int = 300) -> Svg:
    """Columns stacked by series, one per label in ``columns`` (e.g. months), with a legend.

    Labels on the axis are thinned out to fit; every column keeps its own ``<title>``.
    """
    left, right, top, bottom, legend_h = 44, 12, 16, 44, 28
    body: list[str] = []
    if not columns:
        body.append(f'<text x="{width / 2:.0f}" y="{top + 20}" text-anchor="middle">'
                    f'{_text(empty)}</text>')
        return _document(width, 60, title, desc, body)
    for s in series:
        if len(s.values) != len(columns):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for "
                             f"{len(columns)} columns")
    totals = [sum(s.values[i] for s in series) for i in range(len(columns))]
    ticks = nice_ticks(max(totals))
    plot_w = width - left - right
    plot_h = height - top - bottom - legend_h
    axis_y = top + plot_h
    scale = plot_h / ticks[-1]
    slot = plot_w / len(columns)
    bar_w = max(1.0, slot * 0.72)
    for tick in ticks:
        y = axis_y - tick * scale
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                    f'stroke="{GRID}" stroke-width="1"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                    f'class="tick">{tick}</text>')
    every = max(1, math.ceil(len(columns) * 64 / plot_w))  # ~64 px per axis label
    for i, label in enumerate(columns):
        x = left + i * slot + (slot - bar_w) / 2
        base = float(axis_y)
        parts = [f'<g class="column" data-label={_attr(label)} data-total="{totals[i]}">'
                 f'<title>{_text(label)}: {totals[i]}</title>']
        for s, colour in zip(series, SERIES_COLOURS, strict=False):
            value = s.values[i]
            if value <= 0:
                continue
            h = value * scale
            base -= h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{colour}" data-series={_attr(s.name)} '
                         f'data-value="{value}"><title>{_text(label)}, {_text(s.name)}: '
                         f'{value}</title></rect>')
        parts.append("</g>")
        body.append("".join(parts))
        if i % every == 0:
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{axis_y + 16}" '
                        f'text-anchor="middle" class="tick">{_text(label)}</text>')
    legend_y = height - legend_h + 8
    x = float(left)
    for s, colour in zip(series, SERIES_COLOURS, strict=False):
        body.append(f'<rect x="{x:.1f}" y="{legend_y}" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{x + 16:.1f}" y="{legend_y + 11}">{_text(s.name)}</text>')
        x += 16 + len(s.name) * _CHAR_PX + 18
    return _document(width, height, title, desc, body)
