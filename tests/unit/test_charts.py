"""Server-drawn bar charts: scale, geometry inside the plot, and the text alternative."""

from __future__ import annotations

import pytest

from partnerpay.web.charts import HEIGHT, WIDTH, Series, bar_chart, describe, nice_step


class TestNiceStep:
    @pytest.mark.parametrize(("top", "step"), [(1, 1), (4, 1), (5, 2), (9, 5), (21, 10), (199, 50), (4_001, 2_000)])
    def test_four_steps_cover_the_highest_value(self, top: int, step: int):
        assert nice_step(top) == step and step * 4 >= top


class TestBarChart:
    def test_one_bar_per_value_all_inside_the_plot_the_tallest_scaled_to_its_value(self):
        values = {"Clicks": [3, 0, 17, 8], "Signups": [1, 0, 2, 0]}
        chart = bar_chart(
            id="c",
            title="Clicks and signups",
            categories=["1 Jan", "2 Jan", "3 Jan", "4 Jan"],
            series=[Series(name, v) for name, v in values.items()],
        )
        assert len(chart.bars) == sum(len(v) for v in values.values())
        for bar in chart.bars:
            assert bar.x >= 0 and bar.x + bar.width <= WIDTH and bar.y >= 0 and bar.y + bar.height <= HEIGHT
            assert abs(bar.y + bar.height - chart.baseline) < 0.02  # bars stand on the baseline
        top_value = nice_step(17) * 4
        tallest = max(chart.bars, key=lambda b: b.height)
        assert tallest.label == "3 Jan · Clicks: 17"
        assert abs(tallest.height - (chart.baseline - chart.ticks[-1].y) * 17 / top_value) < 0.02
        assert [e.total for e in chart.legend] == [sum(v) for v in values.values()]

    def test_a_series_of_the_wrong_length_is_refused(self):
        with pytest.raises(ValueError):
            bar_chart(id="c", title="t", categories=["a", "b"], series=[Series("x", [1])])

    def test_all_zero_still_draws_a_scale(self):
        chart = bar_chart(id="c", title="t", categories=["a"], series=[Series("x", [0])])
        assert [t.label for t in chart.ticks] == ["0", "1", "2", "3", "4"]


class TestDescribe:
    def test_names_the_span_each_total_and_its_peak(self):
        text = describe(["1 Jan", "2 Jan", "3 Jan"], [Series("Clicks", [5, 1_200, 7]), Series("Leads", [0, 0, 0])])
        assert text == "3 days from 1 Jan to 3 Jan. Clicks: 1,212 in total, most on 2 Jan (1,200). Leads: none."
