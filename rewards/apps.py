from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards and vouchers"

    def ready(self) -> None:
        from members.exports import register_exporter
        from rewards.exports import member_rewards_export

        register_exporter("rewards", member_rewards_export)
