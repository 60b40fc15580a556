from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Programs and members"

    def ready(self) -> None:
        from members.tokens import connect_password_receivers

        connect_password_receivers()
