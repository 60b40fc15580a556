"""The program dashboard: `panels` (the panel type, the registry, the loyalty panels) and `rewards` (the
attainability panel); importing the package registers both, in that order."""

from analytics.dashboard import panels, rewards

__all__ = ["panels", "rewards"]
