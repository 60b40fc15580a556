from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Points ledger"

    def ready(self) -> None:
        from members.exports import register_exporter

        from .selectors import member_ledger_export

        register_exporter("ledger", member_ledger_export)
