from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo and fuzzing data (`seed_demo`, `seed_fuzz`): above every other app, it seeds them all."""

    name = "demo"
    verbose_name = "Demo data"
