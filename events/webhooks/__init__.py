"""Webhook delivery of the outbox: signing (`signing`), safe HTTP to the receivers (`transport`), the retry
schedule (`schedule`), the services that dispatch, deliver and replay (`services`) and the reads the admin and the
manager API share (`selectors`). docs/webhooks.md."""
