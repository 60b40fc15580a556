"""django-filter sets for the ledger (the member list's: `analytics.apis.manage_members`, it filters by figures)."""

import django_filters

from config.api.input import AwareIsoDateTimeFilter
from loyalty.models import Entry, EntryKind


class EntryFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EntryKind.choices)
    occurred_after = AwareIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = AwareIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "occurred_after", "occurred_before"]
