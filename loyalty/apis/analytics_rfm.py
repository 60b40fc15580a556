"""Manager API: analytics (placeholder, filled in by the analytics work)."""

urlpatterns: list = []
