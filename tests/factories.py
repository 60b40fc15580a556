"""factory_boy factories for the rows tests need. Rows with rules of their own go through their service (API keys,
earning rules, tiers, webhook endpoints), so a factory makes what the admin or API would. The ledger's rows
(accounts, lots, entries, allocations) have no factory: tests/builders.py makes them through the services.
"""

from decimal import Decimal

import factory
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from analytics.models import AcquisitionCost, MemberAnalytics, NpsAnswer
from events.models import WebhookEndpoint
from events.webhooks.services import webhook_endpoint_save
from loyalty.models import EarningRule, Purchase, Tier
from loyalty.services.rules import earning_rule_save
from loyalty.services.tiers import tier_save
from members.identifiers import random_code
from members.models import ApiKey, Member, Program
from members.services.api_keys import api_key_create
from rewards.models import Reward, RewardKind

MANAGER_PERMISSIONS = ["view_member", "change_member", "view_program", "adjust_points", "view_entry", "view_apikey"]
# An IP literal on the public internet: accepted without a DNS lookup; tests replace the transport before a send.
PUBLIC_URL = "http://93.184.216.34/hook"


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    slug = factory.Sequence(lambda n: f"program-{n}")
    name = factory.Sequence(lambda n: f"Program {n}")
    currency = "EUR"
    timezone = "Europe/Prague"


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    program = factory.SubFactory(ProgramFactory)
    external_id = factory.Sequence(lambda n: f"CUST-{n}")
    card = factory.Sequence(lambda n: f"{400000000000 + n}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = "Jana"
    last_name = factory.Sequence(lambda n: f"Novak{n}")
    enrolled_at = factory.LazyFunction(timezone.now)
    referral_code = factory.LazyFunction(lambda: random_code(8))


class StaffFactory(factory.django.DjangoModelFactory):
    """A manager with the permissions the manager API and admin need (`permissions=[...]` for others), managing
    the `programs` given."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"manager{n}")
    is_staff = True

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        codenames = extracted if extracted is not None else MANAGER_PERMISSIONS
        self.user_permissions.add(*Permission.objects.filter(codename__in=codenames))

    @factory.post_generation
    def programs(self, create, extracted, **kwargs):
        for program in extracted or ():
            program.managers.add(self)


class SuperuserFactory(factory.django.DjangoModelFactory):
    """A superuser; without a `password` it has an unusable one (force_login, force_authenticate)."""

    class Meta:
        model = User

    username = "root"
    email = "root@example.com"
    password = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_superuser(*args, **kwargs)


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A till's key, made by api_key_create; its plain text is on `.plain` (it is never stored)."""

    class Meta:
        model = ApiKey

    program = factory.SubFactory(ProgramFactory)
    name = "Till"
    store = ""
    created_by = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        api_key, plain = api_key_create(**kwargs)
        api_key.plain = plain
        return api_key


class EarningRuleFactory(factory.django.DjangoModelFactory):
    """A rule saved by earning_rule_save (validated, the program's ruleset recompiled): by default a base rate of
    0.1 point per currency unit; `tiers=[...]` limits it to those tiers."""

    class Meta:
        model = EarningRule

    program = factory.SubFactory(ProgramFactory)
    name = "Base rate"
    kind = "base_rate"
    rate = factory.LazyAttribute(lambda rule: Decimal("0.1") if rule.kind == "base_rate" else Decimal(0))

    @classmethod
    def _create(cls, model_class, *args, tiers=None, **kwargs):
        return earning_rule_save(rule=model_class(*args, **kwargs), tiers=tiers)


class TierFactory(factory.django.DjangoModelFactory):
    """A tier saved by tier_save (validated, the program's ruleset recompiled)."""

    class Meta:
        model = Tier

    program = factory.SubFactory(ProgramFactory)
    name = "Silver"
    rank = 1
    threshold = Decimal(0)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return tier_save(tier=model_class(*args, **kwargs))


class RewardFactory(factory.django.DjangoModelFactory):
    """A reward of the catalog: 5 EUR off for 100 points unless told otherwise."""

    class Meta:
        model = Reward

    program = factory.SubFactory(ProgramFactory)
    name = "5 EUR off"
    kind = RewardKind.FIXED_DISCOUNT
    value = Decimal("5.00")
    points_cost = 100


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint saved by webhook_endpoint_save (URL and event types checked, a secret made)."""

    class Meta:
        model = WebhookEndpoint

    program = factory.SubFactory(ProgramFactory)
    url = PUBLIC_URL

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return webhook_endpoint_save(**kwargs)


class PurchaseFactory(factory.django.DjangoModelFactory):
    """A purchase row without points (no rule ran, nothing reached the ledger): what the analytics read.
    A purchase that earns goes through tests.builders.purchase."""

    class Meta:
        model = Purchase

    member = factory.SubFactory(MemberFactory)
    program = factory.SelfAttribute("member.program")
    external_id = factory.Sequence(lambda n: f"P-{n}")
    occurred_at = factory.LazyFunction(timezone.now)
    currency = "EUR"
    total = Decimal("100.00")
    eligible_amount = factory.SelfAttribute("total")

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        for name in ("total", "eligible_amount", "returned_total"):
            if name in kwargs:
                kwargs[name] = Decimal(kwargs[name])  # "19.90" or 20 as well as a Decimal
        return kwargs


class NpsAnswerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NpsAnswer

    member = factory.SubFactory(MemberFactory)
    program = factory.SelfAttribute("member.program")
    score = 10
    source = "import"
    answered_at = factory.LazyFunction(timezone.now)


class MemberAnalyticsFactory(factory.django.DjangoModelFactory):
    """A member's analytics row as a refresh would leave it."""

    class Meta:
        model = MemberAnalytics

    member = factory.SubFactory(MemberFactory)
    program = factory.SelfAttribute("member.program")
    computed_at = factory.LazyFunction(timezone.now)


class AcquisitionCostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AcquisitionCost

    program = factory.SubFactory(ProgramFactory)
    channel = "store"
