"""Seeds a demo program with members and two years of activity, through the services."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from analytics.models import AcquisitionCost, NpsSource
from analytics.services.nps import nps_record
from analytics.services.refresh import analytics_refresh
from loyalty.audit import ledger_audit
from loyalty.models import EarningRule, Tier
from loyalty.services.enrollment import member_enroll
from loyalty.services.ledger import ledger_adjust
from loyalty.services.lots import lots_activate, lots_expire, lots_warn_expiring
from loyalty.services.purchases import LineInput, PurchaseInput, purchase_record
from loyalty.services.returns import return_record
from loyalty.services.rules import earning_rule_save
from loyalty.services.tiers import tier_review, tier_save
from members.app_auth import member_app_user_set
from members.exceptions import DomainError
from members.expiry import ExpiryPolicy
from members.models import Member, MemberStatus, Program
from members.services.api_keys import api_key_create
from members.services.members import member_close, member_suspend
from members.services.programs import program_create
from rewards.models import Reward, RewardKind
from rewards.services import reward_redeem, reward_save

DEMO_SLUG = "demo"
DEMO_MEMBER_PASSWORD = "espresso-lover-42"  # noqa: S105 (printed by the demo; never used in production)
FIRST_NAMES = ["Jana", "Petr", "Eva", "Tomas", "Lucie", "Martin", "Anna", "Jakub", "Tereza", "David", "Klara", "Adam"]
LAST_NAMES = ["Novak", "Svoboda", "Dvorak", "Cerny", "Prochazka", "Kucera", "Vesely", "Horak", "Marek", "Pokorny"]
CHANNELS = ["store", "eshop", "app", "referral", "campaign"]
REWARDS = [
    {
        "name": "Free espresso",
        "kind": RewardKind.FREE_PRODUCT,
        "value": Decimal("55.00"),
        "sku": "COF-ESP",
        "points_cost": 200,
    },
    {"name": "100 CZK off", "kind": RewardKind.FIXED_DISCOUNT, "value": Decimal("100.00"), "points_cost": 500},
    {
        "name": "10 % off books",
        "kind": RewardKind.PERCENT_DISCOUNT,
        "value": Decimal("10.00"),
        "points_cost": 700,
        "scope_categories": ["books"],
    },
    {
        "name": "Gold lounge reading hour",
        "kind": RewardKind.FREE_PRODUCT,
        "value": Decimal("150.00"),
        "sku": "LOUNGE-1",
        "points_cost": 900,
    },
    {
        "name": "Signed first edition",
        "kind": RewardKind.FREE_PRODUCT,
        "value": Decimal("900.00"),
        "sku": "BOOK-SIGNED",
        "points_cost": 5000,
        "stock": 20,
        "per_member_limit": 1,
    },
]
ACQUISITION_COSTS = {"store": "40", "eshop": "120", "app": "150", "referral": "60", "campaign": "900"}  # per member
NPS_SCORES = [10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3]
STORES = ["PRAGUE-01", "PRAGUE-02", "BRNO-01", "ESHOP"]
CATALOG = [
    ("BK-101", "books", Decimal("349.00")),
    ("BK-102", "books", Decimal("499.00")),
    ("BK-103", "books", Decimal("259.00")),
    ("CF-201", "coffee", Decimal("89.00")),
    ("CF-202", "coffee", Decimal("119.00")),
    ("CK-301", "cakes", Decimal("75.00")),
    ("GC-500", "gift-cards", Decimal("500.00")),
    ("MG-401", "magazines", Decimal("129.00")),
]
TIERS = [("Bronze", 0, 0, "1"), ("Silver", 1, 600, "1.25"), ("Gold", 2, 1500, "1.5")]
RULES = [
    {
        "name": "1 bean per 10 CZK",
        "kind": "base_rate",
        "rate": Decimal("0.1"),
        "excluded_categories": "gift-cards",
        "priority": 10,
    },
    {
        "name": "Books: double beans",
        "kind": "multiplier",
        "multiplier": Decimal(2),
        "categories": "books",
        "priority": 20,
    },
    {
        "name": "Weekend e-shop bonus",
        "kind": "bonus",
        "points": 20,
        "channels": "eshop",
        "weekdays": "6,7",
        "priority": 30,
        "cap_per_member_day": 20,
    },
    {"name": "Big basket bonus", "kind": "bonus", "points": 50, "min_basket": Decimal(1000), "priority": 40},
    {"name": "Welcome: first purchase", "kind": "bonus", "points": 50, "first_purchase": True, "priority": 50},
    {"name": "Welcome beans", "kind": "event", "event": "signup", "points": 100},
    {"name": "Birthday beans", "kind": "event", "event": "birthday", "points": 200},
    {"name": "Bring a friend", "kind": "event", "event": "referral", "points": 150},
    {"name": "Profile completed", "kind": "event", "event": "profile_completed", "points": 30},
]
HISTORY_DAYS = 730


class Command(BaseCommand):
    help = "Creates the demo program (members with two years of points activity), an admin login and a POS API key."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=42, help="Random seed, for the same demo every time.")
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="admin", help="Demo only: never use this in production.")
        parser.add_argument(
            "--member-password",
            default=DEMO_MEMBER_PASSWORD,
            help="The member app password of the first active member. Demo only.",
        )

    def handle(self, *args, **options):
        admin = self._admin(options["admin_username"], options["admin_password"])
        program = Program.objects.filter(slug=DEMO_SLUG).first()
        if program is None:
            program = self._program(admin)
            self._members(program, admin, options["members"], random.Random(options["seed"]))
            self._jobs()
            self._analytics(program)
        else:
            self.stdout.write(f"Demo program exists ({program.members.count()} members); not seeding again.")
        app_email = self._app_login(program, options["member_password"])
        mismatches = ledger_audit(program=program)
        self.stdout.write(f"Ledger check: {len(mismatches)} mismatch(es).")
        _, key = api_key_create(program=program, name=f"Demo till {timezone.now():%Y-%m-%d %H:%M}")
        self.stdout.write(
            self.style.SUCCESS(
                "\nDemo ready.\n"
                f"  Admin:        http://127.0.0.1:8000/admin/  login {admin.username} / {options['admin_password']}\n"
                f"  API docs:     http://127.0.0.1:8000/api/docs/\n"
                f"  Member app:   program {DEMO_SLUG}, email {app_email}, password {options['member_password']}\n"
                f"  POS API key:  {key}\n"
                f"  Try:          curl -H 'Authorization: Api-Key {key}' "
                "'http://127.0.0.1:8000/api/pos/v1/members/lookup/?email=member1@demo.example'\n"
            )
        )

    def _admin(self, username: str, password: str):
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            return user_model.objects.create_superuser(username=username, email="", password=password)
        if not user.check_password(password):  # a new hash of the same password would end the user's tokens
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _app_login(self, program: Program, password: str) -> str | None:
        """Gives the first active member an app password, so the member app can be tried; its email, or None."""
        member = program.members.select_related("user").filter(status=MemberStatus.ACTIVE).order_by("pk").first()
        if member is None:
            return None
        if member.user is None or not member.user.check_password(password):  # keeps the app signed in on reruns
            member_app_user_set(member=member, password=password)
        return member.email

    def _program(self, admin) -> Program:
        program = program_create(
            slug=DEMO_SLUG,
            name="Demo Coffee & Books",
            currency="CZK",
            timezone="Europe/Prague",
            points_name="beans",
            point_value=Decimal("0.10"),
            pending_days=14,
            expiry_policy=ExpiryPolicy.MONTH_END,
            expiry_period=12,
            expiry_warning_days=30,
            managers=[admin],
        )
        for name, rank, threshold, multiplier in TIERS:
            tier_save(
                tier=Tier(
                    program=program,
                    name=name,
                    rank=rank,
                    threshold=Decimal(threshold),
                    earn_multiplier=Decimal(multiplier),
                    benefits=f"{name} benefits",
                )
            )
        for fields in RULES:
            earning_rule_save(rule=EarningRule(program=program, **fields))
        gold = Tier.objects.get(program=program, name="Gold")
        for fields in REWARDS:
            reward_save(
                reward=Reward(program=program, **fields, min_tier=gold if fields["points_cost"] == 900 else None)
            )
        return program

    def _members(self, program: Program, admin, count: int, rng: random.Random) -> None:
        now = timezone.now()
        rewards = list(Reward.objects.filter(program=program, is_active=True, min_tier__isnull=True))
        members: list[Member] = []
        for n in range(1, count + 1):
            enrolled_at = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
            referrer = rng.choice(members) if members and rng.random() < 0.1 else None
            with transaction.atomic():
                member = member_enroll(
                    program=program,
                    external_id=f"CUST-{n:06d}",
                    email=f"member{n}@demo.example",
                    phone=f"+420700{n:06d}",
                    first_name=rng.choice(FIRST_NAMES),
                    last_name=rng.choice(LAST_NAMES),
                    acquisition_channel=rng.choice(CHANNELS),
                    enrolled_at=enrolled_at,
                    referral_code=referrer.referral_code if referrer else None,
                    consent_email=rng.random() < 0.7,
                    consent_sms=rng.random() < 0.3,
                )
                self._history(member, admin, rng, now, rewards)
            members.append(member)
            if n % 500 == 0:
                self.stdout.write(f"  {n} members seeded")
        for member in rng.sample(members, k=min(len(members), count // 100)):
            member_suspend(member=member) if rng.random() < 0.5 else member_close(member=member)

    def _history(self, member: Member, admin, rng: random.Random, now, rewards: list[Reward]) -> None:
        """Purchases with their points, now and then a return, a reward or an NPS answer, rarely a manual
        correction, in time order, all through the services."""
        pace_days = rng.choice([30, 45, 60, 90, 180])
        basket = rng.choice([1, 1, 2, 3, 4])  # some members buy a coffee, others fill a bag: spend differs by member
        moment = member.enrolled_at
        n = 0
        while (moment := moment + timedelta(days=rng.expovariate(1 / pace_days))) < now:
            n += 1
            external_id = f"{member.external_id}-{n:03d}"
            size = min(len(CATALOG), max(1, basket + rng.randint(-1, 1)))
            lines = tuple(
                LineInput(sku=sku, category=category, quantity=Decimal(1), unit_price=price, amount=price)
                for sku, category, price in rng.sample(CATALOG, k=size)
            )
            data = PurchaseInput(
                external_id=external_id,
                occurred_at=moment,
                currency="CZK",
                total=sum((line.amount for line in lines), Decimal(0)),
                lines=lines,
                channel=rng.choice(["pos", "pos", "eshop", "app"]),
                store=rng.choice(STORES),
            )
            purchase_record(program=member.program, member=member, data=data)
            if rng.random() < 0.04:
                return_record(
                    program=member.program,
                    external_id=f"RET-{external_id}",
                    purchase_external_id=external_id,
                    amount=lines[0].amount,
                    occurred_at=moment,
                )
            if rng.random() < 0.12 and rewards:
                try:
                    reward_redeem(member=member, reward=rng.choice(rewards))
                except DomainError:
                    pass  # not enough points yet, or the reward's limit: as at a real till
            if rng.random() < 0.05:
                nps_record(member=member, score=rng.choice(NPS_SCORES), source=NpsSource.APP, answered_at=moment)
            if rng.random() < 0.01:
                ledger_adjust(
                    member=member,
                    points=rng.choice([50, 100, -20]),
                    reason="Goodwill after a complaint",
                    actor=admin,
                    allow_debt=True,
                )

    def _analytics(self, program: Program) -> None:
        """Acquisition costs per channel (the last two years) and a first analytics refresh: RFM, CLV."""
        today = timezone.localdate()
        for channel, cost in ACQUISITION_COSTS.items():
            AcquisitionCost.objects.create(
                program=program,
                channel=channel,
                period_start=today - timedelta(days=HISTORY_DAYS),
                period_end=today,
                cost=Decimal(cost) * program.members.filter(acquisition_channel=channel).count(),
                note="Demo: cost per member acquired",
            )
        status = analytics_refresh(program=program)
        clv = status["results"].get("clv", {})
        self.stdout.write(f"  analytics refreshed: CLV fit converged: {clv.get('converged')}")

    def _jobs(self) -> None:
        for name, job in (("activated", lots_activate), ("expired", lots_expire), ("warned", lots_warn_expiring)):
            report = job()
            self.stdout.write(f"  {name}: {report.points} points in {report.lots} lots of {report.members} members")
        self.stdout.write(f"  tiers reviewed: {tier_review().as_dict()}")
