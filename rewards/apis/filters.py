"""django-filter sets for the manager's reward and voucher lists."""

import django_filters

from config.api.filters import BooleanFilter, id_filter, program_filter
from config.api.input import AwareIsoDateTimeFilter
from rewards.codes import normalize_code
from rewards.models import Reward, RewardKind, Voucher, VoucherStatus


class RewardFilter(django_filters.FilterSet):
    program = program_filter()
    is_active = BooleanFilter()
    kind = django_filters.MultipleChoiceFilter(choices=RewardKind.choices)
    min_tier = id_filter("min_tier_id", "Tier id: rewards needing exactly this tier.")
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = Reward
        fields = ["program", "is_active", "kind", "min_tier"]


class VoucherFilter(django_filters.FilterSet):
    program = program_filter()
    status = django_filters.MultipleChoiceFilter(choices=VoucherStatus.choices)
    reward = id_filter("reward_id", "Reward id.")
    member = id_filter("member_id", "Member id.")
    campaign = django_filters.CharFilter(help_text="The campaign's name, exactly.")
    code = django_filters.CharFilter(method="by_code", help_text="As printed or typed; dashes and case do not matter.")
    issued_after = AwareIsoDateTimeFilter(field_name="issued_at", lookup_expr="gte")
    issued_before = AwareIsoDateTimeFilter(field_name="issued_at", lookup_expr="lt")

    class Meta:
        model = Voucher
        fields = ["program", "status", "reward", "member", "campaign"]

    def by_code(self, queryset, name, value):
        return queryset.filter(code=normalize_code(value))
