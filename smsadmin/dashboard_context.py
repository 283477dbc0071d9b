"""What the admin index shows above the app list, for staff who may follow messages.

It lives here because it brings together apps that may not import each other
(``delivery`` knows nothing of campaigns).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from campaigns.dashboard import campaigns_in_progress
from delivery.dashboard import STATUS_GROUPS, message_dashboard


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """The index's extra context: nothing for staff who may not view messages."""
    user = request.user
    if not user.has_perm("delivery.view_message"):
        return {}
    context: dict[str, Any] = {
        "dashboard": message_dashboard(),
        "status_groups": STATUS_GROUPS,
    }
    if user.has_perm("campaigns.view_campaign"):
        context["campaigns_in_progress"], context["campaigns_left_out"] = campaigns_in_progress()
    return context
