from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics.exports import member_analytics_export
        from members.exports import register_exporter

        register_exporter("analytics", member_analytics_export)
