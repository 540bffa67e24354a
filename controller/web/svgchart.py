"""A grouped bar chart drawn server-side as SVG (our own few lines: no charting library, nothing fetched,
visible without internet access): per interval one bar per series, and a line for a ratio on its own
0-100 % scale. Colours are SVG attributes (the console's CSP allows no inline style)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 960, 300, 48, 48, 16, 56
MAX_INTERVALS = 400  # the page bounds its periods; this keeps a chart's size bounded whatever it is given


def _nice(top: int) -> int:
    """1, 2 or 5 times a power of ten, at least `top` (a step of the counts' axis)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= top:
                return m * step
        step *= 10


def grouped_bars(labels: list[str], series: list[tuple[str, str, list[int]]],
                 ratio: tuple[str, str, list[float | None]] | None = None, title: str = "") -> Markup:
    """`series`: (name, colour, one value per label); `ratio`: (name, colour, 0..1 or None per label).
    Each bar is a <rect class="bar" data-series=… data-period=…>, so a test can count them."""
    labels = labels[:MAX_INTERVALS]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max([1] + [v for _, _, vals in series for v in vals[:len(labels)]])
    top = 4 * _nice(-(-highest // 4))  # four whole steps
    slot = plot_w / max(1, len(labels))
    bar_w = max(1.0, slot * 0.8 / max(1, len(series)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i in range(5):  # grid and the counts' axis
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ee"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#66727f">'
                   f'{top * i // 4}</text>')
        if ratio is not None:
            out.append(f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}" font-size="11" fill="{escape(ratio[1])}">'
                       f'{25 * i}%</text>')
    every = max(1, -(-len(labels) * 110 // plot_w))  # period names ~110 px apart, never overlapping
    for n, label in enumerate(labels):
        x0 = LEFT + n * slot + slot * 0.1
        for k, (name, colour, vals) in enumerate(series):
            v = vals[n] if n < len(vals) else 0
            h = plot_h * v / top
            out.append(f'<rect class="bar" data-series="{escape(name)}" data-period="{escape(label)}" '
                       f'x="{x0 + k * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{escape(colour)}"><title>{escape(label)} {escape(name)}: {v}</title></rect>')
        if n % every == 0:
            out.append(f'<text x="{LEFT + (n + 0.5) * slot:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                       f'font-size="11" fill="#66727f">{escape(label)}</text>')
    if ratio is not None:
        points = [f"{LEFT + (n + 0.5) * slot:.1f},{TOP + plot_h * (1 - r):.1f}"
                  for n, r in enumerate(ratio[2][:len(labels)]) if r is not None]
        if points:
            out.append(f'<polyline class="ratio" points="{" ".join(points)}" fill="none" '
                       f'stroke="{escape(ratio[1])}" stroke-width="2"/>')
    x = LEFT
    for name, colour in [(n, c) for n, c, _ in series] + ([ratio[:2]] if ratio is not None else []):
        out.append(f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{escape(colour)}"/>'
                   f'<text x="{x + 14}" y="{HEIGHT - 9}" font-size="12" fill="#17212b">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    out.append("</svg>")
    return Markup("".join(out))
