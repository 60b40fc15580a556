from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards and vouchers"

    def ready(self) -> None:
        from . import dashboard  # noqa: F401 (registers the rewards panel of the program dashboard)
