"""django-filter sets for the ledger and member lists."""

import django_filters
from django.db.models import Q

from members.models import Member, MemberStatus

from ..models import Entry, EntryKind


class EntryFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EntryKind.choices)
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "occurred_after", "occurred_before"]


class MemberFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
    status = django_filters.MultipleChoiceFilter(choices=MemberStatus.choices)
    available_min = django_filters.NumberFilter(field_name="account__available", lookup_expr="gte")
    available_max = django_filters.NumberFilter(field_name="account__available", lookup_expr="lte")
    debt_min = django_filters.NumberFilter(field_name="account__debt", lookup_expr="gte")
    enrolled_after = django_filters.IsoDateTimeFilter(field_name="enrolled_at", lookup_expr="gte")
    enrolled_before = django_filters.IsoDateTimeFilter(field_name="enrolled_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="search", help_text="Name, email, phone, card or external id.")

    class Meta:
        model = Member
        fields = ["program", "status"]

    def search(self, queryset, name, value):
        value = value.strip()
        card = "".join(ch for ch in value if ch.isalnum()).upper()
        condition = (
            Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(email__icontains=value)
            | Q(phone__icontains=value)
            | Q(external_id=value)
        )
        return queryset.filter(condition | Q(card=card) if card else condition)
