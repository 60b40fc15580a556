"""The outbox and webhooks in the admin:

- `outbox`: the outbox of business events, read-only.
- `webhooks`: webhook endpoints (saved through `events.webhooks.services`), rotating their secret and
  replaying their failed deliveries; `deliveries`: the deliveries with every attempt, read-only apart
  from replaying.

Scoping follows `members.admin`: a manager sees and chooses only their programs' rows.
"""

from events.admin import deliveries, outbox, webhooks

__all__ = ["deliveries", "outbox", "webhooks"]
