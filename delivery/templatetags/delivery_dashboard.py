"""Inline SVG for the admin index dashboard: the geometry, worked out server-side.

The template draws what these return; colours come from CSS classes (see
``delivery/dashboard.css``), so the charts follow the admin's light and dark themes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django import template
from django.utils.formats import date_format

from delivery.dashboard import STATUS_GROUPS, FailureReason, MessageDashboard

register = template.Library()

CHART_WIDTH = 700
CHART_HEIGHT = 220
CHART_LEFT = 44  # room for the scale's numbers
CHART_TOP = 8
CHART_BOTTOM = 34  # room for two lines of dates
SPARK_WIDTH = 160
SPARK_HEIGHT = 40
SPARK_PADDING = 4


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    center: float
    width: float
    weekday: str
    day: str
    title: str
    segments: list[Segment]


@register.filter
def thousands(number: int | None) -> str:
    """1234567 → "1,234,567"."""
    return "" if number is None else f"{number:,}"


@register.filter
def rate(ratio: float | None) -> str:
    """0.9523 → "95.2%"; no reports at all → "—"."""
    return "—" if ratio is None else f"{ratio:.1%}"


@register.simple_tag
def messages_chart(dashboard: MessageDashboard) -> dict[str, Any]:
    """Stacked bars per day, bottom to top in ``STATUS_GROUPS`` order, and a scale."""
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = CHART_TOP + plot_height
    scale_max = _nice_ceiling(max((day.total for day in dashboard.days), default=0))
    slot = (CHART_WIDTH - CHART_LEFT) / len(dashboard.days)
    width = slot * 0.7
    bars = []
    for index, day in enumerate(dashboard.days):
        top = baseline
        segments = []
        for group in STATUS_GROUPS:
            count = day.counts[group.key]
            height = plot_height * count / scale_max
            top -= height
            if count:
                segments.append(
                    Segment(group.key, group.label, count, round(top, 2), round(height, 2))
                )
        parts = ", ".join(f"{segment.count:,} {segment.label.lower()}" for segment in segments)
        when = date_format(day.day, "l j F")
        x = CHART_LEFT + index * slot + (slot - width) / 2
        bars.append(
            Bar(
                x=round(x, 2),
                center=round(x + width / 2, 2),
                width=round(width, 2),
                weekday=date_format(day.day, "D"),
                day=date_format(day.day, "j M"),
                title=f"{when}: {day.total:,} messages" + (f" ({parts})" if parts else ""),
                segments=segments,
            )
        )
    gridlines = [
        {"y": round(baseline - plot_height * step / 4, 2), "label": f"{scale_max * step // 4:,}"}
        for step in range(5)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH,
        "baseline": baseline,
        "bars": bars,
        "gridlines": gridlines,
        "date_y": baseline + 14,
        "weekday_y": baseline + 28,
        "center_x": round((CHART_LEFT + CHART_WIDTH) / 2, 2),
        "middle_y": round(CHART_TOP + plot_height / 2, 2),
        "is_empty": not any(day.total for day in dashboard.days),
    }


@register.simple_tag
def rate_sparkline(dashboard: MessageDashboard) -> dict[str, Any]:
    """The daily delivery rate of the last days, as a line; days without reports are gaps."""
    days = dashboard.rate_days
    rates = [day.delivery_rate for day in days]
    known = [value for value in rates if value is not None]
    # Rates sit near the top: start the scale a little under the lowest so dips show.
    floor = max(0.0, math.floor((min(known, default=1.0) - 0.05) * 10) / 10)
    span = 1.0 - floor or 1.0
    step = (SPARK_WIDTH - 2 * SPARK_PADDING) / max(len(days) - 1, 1)
    points = [
        {
            "x": round(SPARK_PADDING + index * step, 2),
            "y": round(
                SPARK_PADDING + (1 - (value - floor) / span) * (SPARK_HEIGHT - 2 * SPARK_PADDING), 2
            ),
            "title": f"{date_format(day.day, 'l j F')}: {value:.1%} delivered",
        }
        for index, (day, value) in enumerate(zip(days, rates, strict=True))
        if value is not None
    ]
    summary = "; ".join(
        f"{date_format(day.day, 'D j')}: {rate(value)}"
        for day, value in zip(days, rates, strict=True)
    )
    return {
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "points": points,
        "polyline": " ".join(f"{point['x']},{point['y']}" for point in points),
        "floor": f"{floor:.0%}",
        "summary": summary,
    }


@register.simple_tag
def failure_bars(failures: list[FailureReason]) -> list[dict[str, Any]]:
    """Each failure reason with its bar's length, the most frequent one at full length."""
    most = max((failure.count for failure in failures), default=0)
    return [
        {"failure": failure, "width": round(100 * failure.count / most, 1) if most else 0}
        for failure in failures
    ]


def _nice_ceiling(number: int) -> int:
    """The scale's top: four steps of 1, 2 or 5 times a power of ten, at least ``number``,
    so that the quarter lines fall on round numbers."""
    needed = max(math.ceil(number / 4), 1)
    magnitude = 10 ** math.floor(math.log10(needed))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= needed)
    return 4 * step
