"""Analytics in the admin:

- `dashboard`: the program dashboard page (panels from `analytics.dashboard`).
- `segments`: the RFM grid (segment names per score cell) and the history of segment changes.
- `nps`: NPS answers, read-only; acquisition costs per channel, entered by managers.

Scoping follows `members.admin`: a manager sees and chooses only their programs' rows.
"""

from analytics.admin import dashboard, nps, segments

__all__ = ["dashboard", "nps", "segments"]
