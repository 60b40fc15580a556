"""The `data` of each event type (docs/events.md, version 1): one typed builder per type, called by the service
that emits it (`event_emit(..., data=points_earned_payload(...))`), in `members` (member.*, nps.answered),
`points` (points.*, tier.*) and `rewards` (reward.redeemed, voucher.*); the parts they share in `common`.

A builder returns the payload as JSON will carry it: times as the outbox column has always written them
(`DjangoJSONEncoder`: ISO 8601, milliseconds, `Z` for UTC), money and other decimals as strings. The outbox sits
below the ledger and rewards, so builders take plain values (and members' models), never their models: the
emitting service reads what the payload needs. tests/events/test_payloads.py holds every builder to its example
in docs/events.md.
"""
