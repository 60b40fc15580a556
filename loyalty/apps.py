from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Points, purchases and tiers"

    def ready(self) -> None:
        from loyalty.exports import member_purchases_export, member_tier_history_export
        from loyalty.selectors import member_ledger_export
        from members.exports import register_exporter

        register_exporter("ledger", member_ledger_export)
        register_exporter("purchases", member_purchases_export)
        register_exporter("tier_history", member_tier_history_export)
