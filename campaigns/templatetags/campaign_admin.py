"""Small display helpers for the campaign admin pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def thousands(number: int | None) -> str:
    """1234567 → "1,234,567" (the admin does not load django.contrib.humanize)."""
    return "" if number is None else f"{number:,}"


@register.filter
def percent(ratio: float | None) -> str:
    """0.9523 → "95.2%"."""
    return "" if ratio is None else f"{ratio:.1%}"
