"""Bar charts as inline SVG, drawn on the server: no script, no library, readable by a screen reader
(each chart has a title and each bar a <title>)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 64, 28, 12
COLORS = ("#2456d6", "#12733a", "#b54708", "#6941c6", "#c11574", "#0e7090", "#667085")


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Markup:
    """Stacked bars, one per label; `series` maps a name (a model) to one value per label."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(labels), 1)
    bar_w = max(step * 0.7, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#98a2b3"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(fmt(peak))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x = LEFT + i * step + (step - bar_w) / 2
        y: float = TOP + plot_h
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            h = value / peak * plot_h
            y -= h
            tip = f"{label} · {name}: {fmt(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[n % len(COLORS)]}"><title>{escape(tip)}</title></rect>'
            )
        every = max(1, len(labels) // 8)
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{escape(label[5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(names: Sequence[str]) -> list[tuple[str, str]]:
    return [(name, COLORS[n % len(COLORS)]) for n, name in enumerate(names)]
