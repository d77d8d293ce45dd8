"""Charts drawn on the server as inline SVG: no script, readable by a screen reader (title and a text
description), and always shown next to a table of the same figures. Geometry is worked out here;
templates/charts.html draws it. Any console or portal page can use it."""

from __future__ import annotations

from dataclasses import dataclass

# Blue and orange stay apart for the common colour-vision deficiencies; the legend names them anyway.
PALETTE = ("#3147c9", "#d9822b", "#137a3a", "#6b3fb8")
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 26  # room for the value axis and the day labels
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # the bar's tooltip: "12 Jan 2026 · Clicks: 45"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class LegendEntry:
    name: str
    colour: str
    total: int


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    description: str  # the text alternative: totals and peaks, in words
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    x_labels: list[XLabel]
    legend: list[LegendEntry]


def nice_step(top: int, steps: int = 4) -> int:
    """The smallest step of 1, 2 or 5 times a power of ten that covers `top` in `steps` gridlines (integers only)."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude * steps >= top:
                return factor * magnitude
        magnitude *= 10


def bar_chart(*, id: str, title: str, categories: list[str], series: list[Series]) -> BarChart:
    """Grouped bars: one group per category (a day), one bar per series in it."""
    if any(len(s.values) != len(categories) for s in series):
        raise ValueError("every series needs one value per category")
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    step = nice_step(max((v for s in series for v in s.values), default=0) or 1)
    top = step * 4
    group = plot_width / max(len(categories), 1)
    gap = group * 0.2 if group >= 4 else 0.0  # hundreds of days: the bars touch rather than vanish
    bar_width = (group - gap) / max(len(series), 1)
    bars = []
    for i, label in enumerate(categories):
        for j, s in enumerate(series):
            height = plot_height * s.values[i] / top
            bars.append(
                Bar(
                    x=round(LEFT + i * group + gap / 2 + j * bar_width, 2),
                    y=round(TOP + plot_height - height, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    colour=PALETTE[j % len(PALETTE)],
                    label=f"{label} · {s.name}: {s.values[i]}",
                )
            )
    ticks = [Tick(round(TOP + plot_height - plot_height * k / 4, 2), f"{step * k:,}") for k in range(5)]
    every = -(-len(categories) // MAX_X_LABELS) or 1
    x_labels = [
        XLabel(round(LEFT + i * group + group / 2, 2), label) for i, label in enumerate(categories) if i % every == 0
    ]
    legend = [LegendEntry(s.name, PALETTE[j % len(PALETTE)], sum(s.values)) for j, s in enumerate(series)]
    return BarChart(
        id=id,
        title=title,
        description=describe(categories, series),
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        baseline=TOP + plot_height,
        bars=bars,
        ticks=ticks,
        x_labels=x_labels,
        legend=legend,
    )


def describe(categories: list[str], series: list[Series]) -> str:
    """What a sighted reader takes from the chart: the span, each series' total and its highest point."""
    if not categories:
        return "No data."
    parts = [f"{len(categories)} days from {categories[0]} to {categories[-1]}."]
    for s in series:
        peak = max(s.values, default=0)
        if peak == 0:
            parts.append(f"{s.name}: none.")
            continue
        where = categories[s.values.index(peak)]
        parts.append(f"{s.name}: {sum(s.values):,} in total, most on {where} ({peak:,}).")
    return " ".join(parts)
