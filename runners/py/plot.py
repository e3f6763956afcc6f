"""A self-made SVG line chart (no plotting library needed on a CI host)."""

from __future__ import annotations

from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10 * mag


def _time(hours: float, span: float) -> str:
    """Axis label: minutes for campaigns shorter than two hours, hours otherwise."""
    return f"{round(hours * 60, 2):g} min" if span < 2 else f"{round(hours, 2):g} h"


def _count(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def panel(title: str, y_label: str, series: dict[str, list[tuple[float, float]]],
          x_max: float, top: int, width: int = 760, height: int = 230, step: bool = False) -> list[str]:
    """One chart: x = campaign hours, one line per series; step=True draws a staircase."""
    left, right, bottom_pad = 70, 200, 36
    plot_w, plot_h = width - left - right, height - bottom_pad - 28
    y0 = top + 28
    top_y = max((y for pts in series.values() for _, y in pts), default=0)
    # Counts (step=True) get whole-number ticks: a quarter of a failure means nothing.
    y_max = max(4, -(-int(top_y) // 4) * 4) if step else _nice_max(top_y)
    x_max = x_max if x_max > 0 else 1.0

    def sx(x):
        return left + plot_w * x / x_max

    def sy(y):
        return y0 + plot_h - plot_h * y / y_max

    out = [f'<text x="{left}" y="{top + 16}" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for i in range(5):
        yv = y_max * i / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end" font-size="10">{_count(yv)}</text>')
        xv = x_max * i / 4
        out.append(f'<text x="{sx(xv):.1f}" y="{y0 + plot_h + 14}" text-anchor="middle" font-size="10">{_time(xv, x_max)}</text>')
    out.append(f'<text x="14" y="{y0 + plot_h / 2}" font-size="10" transform="rotate(-90 14 {y0 + plot_h / 2})" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    for n, (name, pts) in enumerate(sorted(series.items())):
        color = PALETTE[n % len(PALETTE)]
        pts = sorted(pts)
        if step and pts:
            stair = [(0.0, 0.0)]
            for x, y in pts:
                stair += [(x, stair[-1][1]), (x, y)]
            stair.append((x_max, stair[-1][1]))
            pts = stair
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) > 1:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        for x, y in ([] if step else pts):
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="{color}"/>')
        ly = y0 + 12 + 14 * n
        out.append(f'<rect x="{left + plot_w + 10}" y="{ly - 8}" width="10" height="3" fill="{color}"/>')
        out.append(f'<text x="{left + plot_w + 24}" y="{ly - 3}" font-size="10">{escape(name)}</text>')
    if not series:
        out.append(f'<text x="{left + plot_w / 2}" y="{y0 + plot_h / 2}" text-anchor="middle" fill="#999">no data yet</text>')
    return out


def chart(panels: list[dict], width: int = 760, panel_height: int = 230) -> str:
    body = []
    for i, p in enumerate(panels):
        body += panel(top=i * panel_height, width=width, height=panel_height, **p)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{panel_height * len(panels)}" '
            f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")
