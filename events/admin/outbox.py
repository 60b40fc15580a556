"""The outbox in the admin: the business events written with their changes, read-only."""

from django.contrib import admin

from events.models import OutboxEvent
from members.admin import ManagedProgramFilter, ProgramScopedAdmin
from members.admin.base import ReadOnlyAdminMixin


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, ProgramScopedAdmin):
    list_display = ["event_id", "type", "member", "occurred_at", "created_at", "program"]
    list_filter = [ManagedProgramFilter, "type"]
    list_select_related = ["program", "member"]
    search_fields = ["=event_id", "=member__id", "member__external_id"]
    date_hierarchy = "created_at"
    readonly_fields = ["event_id", "program", "member", "type", "version", "data", "occurred_at", "created_at"]
