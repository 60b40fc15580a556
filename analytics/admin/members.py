"""The member admin with the analytics filters (`member_filters`): analytics extends the member admin that
`loyalty.admin` registered, as that one extends `members.admin.MemberAdmin`, so the apps below analytics never
name its figures."""

from django.contrib import admin

from analytics.admin.member_filters import ClvFilter, NpsGroupFilter, PAliveFilter, SegmentFilter
from loyalty.admin.members import DebtFilter, LoyaltyMemberAdmin
from members.admin import MemberAdmin
from members.models import Member


class AnalyticsMemberAdmin(LoyaltyMemberAdmin):
    # After the member's own filters (status, program), before the points' (debt).
    list_filter = [*MemberAdmin.list_filter, SegmentFilter, PAliveFilter, ClvFilter, NpsGroupFilter, DebtFilter]


admin.site.unregister(Member)
admin.site.register(Member, AnalyticsMemberAdmin)
