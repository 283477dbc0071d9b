from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from members.history import register_audit_history
        from members.roles import sync_roles_after_migrate

        register_audit_history()

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="members.sync_roles")
