from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events and webhooks"

    def ready(self) -> None:
        from events.exports import member_events_export
        from members.exports import register_exporter

        register_exporter("events", member_events_export)
