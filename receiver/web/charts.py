"""Stacked bar charts as plain geometry for an inline SVG the template draws: no chart library,
no script, nothing for the Content-Security-Policy to allow."""

from __future__ import annotations

from dataclasses import dataclass, field

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 64, 28, 10


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Chart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = True


def _label(value: float, unit: str) -> str:
    if unit == "USD":
        return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:,.1f}{suffix}"
    return f"{value:,.0f}"


def stacked_bars(
    title: str, unit: str, values: dict[tuple[str, str], float], buckets: list[str]
) -> Chart:
    """One bar per bucket (x, e.g. a day), stacked by series (e.g. a model).

    ``values`` maps (bucket, series) to a value; series get palette colors in name order."""
    chart = Chart(title, unit)
    series = sorted({s for (_, s), v in values.items() if v})
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    chart.legend = [(s, colors[s]) for s in series]
    totals = {b: sum(values.get((b, s), 0.0) for s in series) for b in buckets}
    top = max(totals.values(), default=0.0)
    if not buckets or top <= 0:
        return chart
    chart.empty = False
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(buckets)
    bar_w = min(max(slot * 0.7, 1.0), 48.0)
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        for s in series:
            value = values.get((bucket, s), 0.0)
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            chart.bars.append(
                Bar(x, y, bar_w, h, colors[s], f"{bucket} {s}: {_label(value, unit)}")
            )
        every = max(1, len(buckets) // 8)
        if i % every == 0:
            chart.x_labels.append((x + bar_w / 2, bucket))
    chart.y_labels = [(TOP + plot_h * (1 - f), _label(top * f, unit)) for f in (0, 0.5, 1)]
    return chart
