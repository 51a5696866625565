"""A small server-made chart: items per prong per year, as stacked SVG bars.

:func:`prong_year_chart` lays the bars out in plain numbers (no JavaScript, no
library); the template draws them as ``<rect>`` elements with presentation
attributes (the CSP forbids inline styles), gives the SVG a title and description,
and shows the same numbers as a table, which is what screen readers and phones get.
Colours are dark enough for 3:1 contrast against white and are always paired with a
legend label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COLOURS = ("#0b5394", "#a64d00", "#38761d", "#741b47", "#444444")
WIDTH, HEIGHT = 720, 240
LEFT, BOTTOM, TOP = 36, 28, 10
#: Least distance between the centres of two year labels: a four-digit year in the
#: 11-unit font is about 28 units wide, so closer labels run together ("19681970").
MIN_TICK_GAP = 44


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # e.g. "2019, Pathways: 3"


@dataclass
class Chart:
    title: str
    description: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, label)
    years: list[int] = field(default_factory=list)
    table: list[dict[str, object]] = field(default_factory=list)  # year + count per prong
    series: list[tuple[str, str]] = field(default_factory=list)  # (prong id, label)


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2500, 5000, 10000):
        if value <= step * 4:
            return step * ((value + step - 1) // step) or step
    return value


def x_ticks(years: list[int], slot: float) -> list[tuple[float, str]]:
    """Year labels at round years (every 1, 2, 5, 10, ... years, whichever leaves
    :data:`MIN_TICK_GAP` between them), plus the first year when it has room."""
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100) if s * slot >= MIN_TICK_GAP), 100)
    picks = [n for n, y in enumerate(years) if y % step == 0]
    if not picks or (picks[0] > 0 and picks[0] * slot >= MIN_TICK_GAP):
        picks.insert(0, 0)
    return [(round(LEFT + n * slot + slot / 2, 1), str(years[n])) for n in picks]


def prong_year_chart(counts: dict[str, dict[int, int]], labels: dict[str, str]) -> Chart:
    """A stacked bar per year (from the first to the last year with items)."""
    series = [(pid, labels.get(pid, pid)) for pid in counts]
    all_years = sorted({y for per in counts.values() for y in per})
    total = sum(sum(per.values()) for per in counts.values())
    chart = Chart(
        title="Items per prong per year",
        description=(
            f"Stacked bars of {total} prong assignments by publication year"
            + (f", {all_years[0]} to {all_years[-1]}" if all_years else "")
            + ". The table below gives the same numbers."
        ),
        series=series,
        legend=[(COLOURS[i % len(COLOURS)], lab) for i, (_, lab) in enumerate(series)],
    )
    if not all_years:
        return chart
    years = list(range(all_years[0], all_years[-1] + 1))
    chart.years = years
    peak = max(sum(counts[p].get(y, 0) for p, _ in series) for y in years)
    top = _nice_max(max(peak, 1))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(years)
    bar_w = max(1.0, slot * 0.8)
    for n, year in enumerate(years):
        x = LEFT + n * slot + (slot - bar_w) / 2
        base: float = HEIGHT - BOTTOM
        for i, (pid, lab) in enumerate(series):
            value = counts[pid].get(year, 0)
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            chart.bars.append(
                Bar(
                    round(x, 1),
                    round(base, 1),
                    round(bar_w, 1),
                    round(h, 1),
                    COLOURS[i % len(COLOURS)],
                    f"{year}, {lab}: {value}",
                )
            )
    chart.x_ticks = x_ticks(years, slot)
    chart.y_ticks = [
        (round(HEIGHT - BOTTOM - plot_h * f, 1), str(round(top * f)))
        for f in (0, 0.25, 0.5, 0.75, 1)
        if float(top * f).is_integer()
    ]
    chart.table = [
        {"year": y, **{pid: counts[pid].get(y, 0) for pid, _ in series}}
        for y in years
        if any(counts[pid].get(y) for pid, _ in series)
    ]
    return chart
