"""The landing page's chart: year labels never run together, however many years."""

from __future__ import annotations

import pytest

from biblio.catalog import charts


@pytest.mark.parametrize("first", [1900, 1968, 1995, 2015, 2024])
def test_year_labels_keep_their_distance(first):
    counts = {"pathways": {first: 1, 2024: 2}, "worker-equity": {first + (2024 - first) // 2: 3}}
    chart = charts.prong_year_chart(counts, {"pathways": "Pathways"})
    xs = [x for x, _ in chart.x_ticks]
    assert xs == sorted(xs) and xs
    assert all(b - a >= charts.MIN_TICK_GAP - 0.2 for a, b in zip(xs, xs[1:])), chart.x_ticks
    assert all(label.isdigit() for _, label in chart.x_ticks)


def test_the_sample_librarys_span_is_labelled_at_round_years():
    years = list(range(1968, 2025))
    ticks = charts.x_ticks(years, (charts.WIDTH - charts.LEFT - 8) / len(years))
    assert [label for _, label in ticks][:3] == ["1970", "1975", "1980"]  # not "1968" "1970"
