"""Analytics in the admin:

- `dashboard`: the program dashboard page (panels from `analytics.dashboard`).
- `segments`: the RFM grid (segment names per score cell) and the history of segment changes.
- `nps`: NPS answers, read-only; acquisition costs per channel, entered by managers.
- `members`: the member admin of `loyalty.admin` with the list's analytics filters (`member_filters`: RFM segment,
  P(alive), predicted lifetime value, NPS group).

Scoping follows `members.admin`: a manager sees and chooses only their programs' rows.
"""

from analytics.admin import dashboard, member_filters, members, nps, segments

__all__ = ["dashboard", "member_filters", "members", "nps", "segments"]
