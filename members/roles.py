"""The two staff roles and what each may do, kept in sync after every ``migrate``.

Admins may do everything. Social managers look after members, events and imports and
compose and send campaigns; they cannot manage users, lift or delete opt-outs and
suppressions, or hold API credentials.
"""

from __future__ import annotations

from typing import Any

ADMIN = "Admin"
SOCIAL_MANAGER = "Social manager"

# "app_label.codename" permissions of the Social manager role. Entries for models that do
# not exist yet (later apps) are skipped until they do.
SOCIAL_MANAGER_PERMISSIONS = frozenset(
    {
        "members.view_member",
        "members.add_member",
        "members.change_member",
        "members.delete_member",
        "members.view_event",
        "members.add_event",
        "members.change_event",
        "members.delete_event",
        "members.view_eventregistration",
        "members.add_eventregistration",
        "members.change_eventregistration",
        "members.delete_eventregistration",
        "members.view_importjob",
        "members.add_importjob",
        "members.view_optout",
        "members.add_optout",
        "members.view_suppression",
        "campaigns.view_campaign",
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "delivery.view_message",
        # The inbox: read texts, reply and mark them handled.
        "delivery.view_inboundmessage",
        "delivery.change_inboundmessage",
        # The daily message: read, edit or replace it before it goes out (approving it,
        # when approval is required, is the Admins').
        "positivity.view_dailymessage",
        "positivity.add_dailymessage",
        "positivity.change_dailymessage",
    }
)


def sync_roles(apps: Any) -> None:
    """Create both groups and give them exactly their permissions.

    ``apps`` is a migration's app registry or the real one, so that a data migration and
    the post-migrate hook share this code.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # A migration's app registry holds stubs that create_permissions would skip.
        is_stub = getattr(app_config, "models_module", None) is None
        if is_stub:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        if is_stub:
            app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    every_permission = list(permission_model.objects.select_related("content_type"))

    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.set(every_permission)

    manager, _ = group_model.objects.get_or_create(name=SOCIAL_MANAGER)
    manager.permissions.set(
        [
            permission
            for permission in every_permission
            if f"{permission.content_type.app_label}.{permission.codename}"
            in SOCIAL_MANAGER_PERMISSIONS
        ]
    )


def sync_roles_after_migrate(sender: Any, **kwargs: Any) -> None:
    from django.apps import apps as global_apps

    if sender.name != "members":
        return
    sync_roles(kwargs.get("apps") or global_apps)
