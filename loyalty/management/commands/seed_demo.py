"""Seeds a demo program with members and two years of activity, through the services."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import InsufficientPoints
from loyalty.models import EntryKind
from loyalty.services.enrollment import member_enroll
from loyalty.services.jobs import lots_activate, lots_expire, lots_warn_expiring
from loyalty.services.ledger import ledger_adjust, ledger_credit, ledger_debit
from members.expiry import ExpiryPolicy
from members.models import Member, Program
from members.services import api_key_create, member_close, member_suspend, program_create

DEMO_SLUG = "demo"
FIRST_NAMES = ["Jana", "Petr", "Eva", "Tomas", "Lucie", "Martin", "Anna", "Jakub", "Tereza", "David", "Klara", "Adam"]
LAST_NAMES = ["Novak", "Svoboda", "Dvorak", "Cerny", "Prochazka", "Kucera", "Vesely", "Horak", "Marek", "Pokorny"]
CHANNELS = ["store", "eshop", "app", "referral", "campaign"]
REWARD_COSTS = [200, 500, 1000]
HISTORY_DAYS = 730


class Command(BaseCommand):
    help = "Creates the demo program (members with two years of points activity), an admin login and a POS API key."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=42, help="Random seed, for the same demo every time.")
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="admin", help="Demo only: never use this in production.")

    def handle(self, *args, **options):
        admin = self._admin(options["admin_username"], options["admin_password"])
        program = Program.objects.filter(slug=DEMO_SLUG).first()
        if program is None:
            program = self._program(admin)
            self._members(program, admin, options["members"], random.Random(options["seed"]))
            self._jobs()
        else:
            self.stdout.write(f"Demo program exists ({program.members.count()} members); not seeding again.")
        mismatches = ledger_audit(program=program)
        self.stdout.write(f"Ledger check: {len(mismatches)} mismatch(es).")
        _, key = api_key_create(program=program, name=f"Demo till {timezone.now():%Y-%m-%d %H:%M}")
        self.stdout.write(
            self.style.SUCCESS(
                "\nDemo ready.\n"
                f"  Admin:        http://127.0.0.1:8000/admin/  login {admin.username} / {options['admin_password']}\n"
                f"  API docs:     http://127.0.0.1:8000/api/docs/\n"
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
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    def _program(self, admin) -> Program:
        return program_create(
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

    def _members(self, program: Program, admin, count: int, rng: random.Random) -> None:
        now = timezone.now()
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
                self._history(member, admin, rng, now)
            members.append(member)
            if n % 500 == 0:
                self.stdout.write(f"  {n} members seeded")
        for member in rng.sample(members, k=min(len(members), count // 100)):
            member_suspend(member=member) if rng.random() < 0.5 else member_close(member=member)

    def _history(self, member: Member, admin, rng: random.Random, now) -> None:
        """Visits with points earned, now and then a reward, rarely a manual correction, in time order."""
        pace_days = rng.choice([14, 30, 60, 90, 180])
        moment = member.enrolled_at
        while (moment := moment + timedelta(days=rng.expovariate(1 / pace_days))) < now:
            ledger_credit(
                member=member,
                amount=rng.randint(10, 300),
                occurred_at=moment,
                available_at=member.program.available_at_for(moment),
                details={"source": "demo visit"},
            )
            if rng.random() < 0.15:
                try:
                    ledger_debit(
                        member=member,
                        amount=rng.choice(REWARD_COSTS),
                        occurred_at=moment,
                        kind=EntryKind.REDEEM,
                        details={"reward": "demo reward"},
                    )
                except InsufficientPoints:
                    pass
            if rng.random() < 0.01:
                ledger_adjust(
                    member=member,
                    points=rng.choice([50, 100, -20]),
                    reason="Goodwill after a complaint",
                    actor=admin,
                    allow_debt=True,
                )

    def _jobs(self) -> None:
        for name, job in (("activated", lots_activate), ("expired", lots_expire), ("warned", lots_warn_expiring)):
            report = job()
            self.stdout.write(f"  {name}: {report.points} points in {report.lots} lots of {report.members} members")
