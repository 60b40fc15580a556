"""Reward attainability: GET me/rewards/ and the program report against the same reads in hand-written SQL.

Run from the project root (PostgreSQL on 127.0.0.1:5432 by default):

    .venv/bin/python bench/attainability.py [--recreate] [--sizes 100000,1000000] [--requests 300] [--json]

The database is `BENCH_DATABASE_URL` or `--database-url` (the application's `DATABASE_URL` is ignored); the
benchmark only runs on a database it created itself (marked with a comment), as bench/ledger.py.

1. set-up (not measured; reused by later runs, `--recreate` starts again): per size in `--sizes`, a program
   (Europe/Prague, points expire after 365 days, 180-day attainability window) with three tiers, three earning
   rules, 50 rewards on offer (costs 150 to 25,000; some for a minimum tier, some limited per member, some
   with stock) and 3 that are not; that many active members plus 4 % suspended or closed ones, with accounts,
   ledger entries over the last 400 days (`earn`, some `reverse`) and their awards, inserted with set-based
   SQL into the real tables, one transaction per program; in the smallest program, one member with
   `--entries` ledger entries (earn entries with lots, some spent, most expiring later; returns; redemptions;
   three vouchers redeemed through `reward_redeem`) who signs in to the app; then VACUUM ANALYZE;
2. GET /api/app/v1/me/rewards/?page_size=50 as that member through the WSGI application in this process,
   against the same reads by hand (token and member, rewards on offer, account and tier, vouchers held, the
   pace sum, the expiring lots by day: raw SQL on the same connection), in alternating rounds;
3. per size, `program_report(program=...)` against bench/attainability_report.sql (the same aggregate as one
   query, on the same connection), in alternating rounds, each pair at the same `now`; every hand-SQL answer
   must equal the report's (the run fails otherwise); then the report with a what-if (base rate x 1.5) once;
4. the memory of this process: its peak during each size's reports (getrusage's maxrss, reset before them).

The generated rows satisfy the tables' CHECK constraints, foreign keys and triggers, but they are not a
balanced ledger: account balances are a random share of each member's net points (the rest counted as
redeemed), the population's earn entries have no lots, and the me/rewards/ member's returns and redemptions
(but the three vouchers) have no allocations. Neither the report nor the endpoint reads what is missing;
`ledger_audit` would report mismatches, and this benchmark does not run it.
"""

import argparse
import io
import json
import os
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import fmean, median
from typing import Any

import psycopg
from ledger import ensure_database, percentile  # bench/ is the script's folder, first on sys.path
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
REPORT_SQL = Path(__file__).resolve().parent / "attainability_report.sql"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_attainability"
DATABASE_MARK = "created by bench/attainability.py, the attainability benchmark"
TIME_ZONE = "Europe/Prague"
EXPIRY_DAYS = 365
HEAVY_CARD = "ATTHEAVY0001"
HEAVY_PASSWORD = "attainability-bench-7"  # the bench member's app password (its own throw-away database)
PAGE_SIZE = 50
THROTTLE = "1000000000/s"  # DRF's throttle still runs (a cache read and write), it just never refuses


# --- Set-up -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--recreate", action="store_true", help="drop and recreate the benchmark's own database first (fresh tables)"
    )
    parser.add_argument(
        "--sizes", default="100000,1000000", help="active members per program, comma-separated (default 100000,1000000)"
    )
    parser.add_argument(
        "--entries",
        type=int,
        default=10_000,
        help="ledger entries of the me/rewards/ member, when it is created (default 10000)",
    )
    parser.add_argument("--requests", type=int, default=300, help="timed me/rewards/ requests per path (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests per path first (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations between the two paths (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reports per path and size (default 3)")
    parser.add_argument(
        "--no-jit", action="store_true", help="SET jit = off on the connection for the reports (both paths)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the populations created (default 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas, e.g. 100000,1000000")
    if min(args.sizes) < 100 or args.entries < 100 or args.requests < args.rounds or args.rounds < 1:
        parser.error("need sizes >= 100, --entries >= 100 and --requests >= --rounds >= 1")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("need --repeat >= 1 and --warmup >= 0")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_django(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["LOYALTY_ALLOW_INSECURE_KEY"] = "1"
    os.environ["DATABASE_URL"] = url
    os.environ["THROTTLE_APP"] = THROTTLE
    os.environ["DEBUG"] = "0"  # as in production: no query log kept in memory
    import django

    warnings.filterwarnings("ignore", "No directory at", UserWarning)  # WhiteNoise before collectstatic
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


TIERS = (("Silver", 1, "1000"), ("Gold", 2, "5000"), ("Platinum", 3, "15000"))
RULES = (
    {"name": "Base rate", "kind": "base_rate", "priority": 10, "rate": Decimal("0.1")},
    {"name": "Books x2", "kind": "multiplier", "priority": 20, "multiplier": Decimal(2), "categories": "books"},
    {"name": "Basket over 1000", "kind": "bonus", "priority": 30, "points": 50, "min_basket": Decimal(1000)},
)
REWARD_KINDS = ("fixed_discount", "percent_discount", "free_product", "gift")
MIN_TIERS = ("Silver", "Gold", "Platinum")


def reward_specs(now: datetime) -> list[dict[str, Any]]:
    """50 rewards on offer, costs 150 to 25,000 (geometric), and three that are not on offer."""
    specs = []
    for i in range(50):
        kind = REWARD_KINDS[i % 4]
        value = {"fixed_discount": Decimal(5 + 5 * i), "percent_discount": Decimal(5 + i % 30),
                 "free_product": Decimal(3 + 2 * i), "gift": None}[kind]  # fmt: skip
        specs.append(
            {
                "name": f"Reward {i + 1:02d} ({kind.replace('_', ' ')})",
                "description": f"Benchmark reward number {i + 1}.",
                "kind": kind,
                "value": value,
                "sku": f"FREE-{i:03d}" if kind == "free_product" else "",
                "points_cost": round(150 * (25_000 / 150) ** (i / 49), -1),
                "min_tier": MIN_TIERS[i % 3] if i >= 8 and i % 4 == 1 else None,
                "per_member_limit": 1 + i % 2 if i % 5 == 2 else None,
                "stock": (0 if i == 7 else 500) if i % 9 == 7 else None,
                "min_basket": Decimal(100) if i % 6 == 0 else None,
                "active_until": now + timedelta(days=60) if i % 11 == 3 else None,
            }
        )
    base = {"kind": "gift", "points_cost": 300, "description": "Not on offer."}
    specs += [
        {**base, "name": "Retired gift", "is_active": False},
        {**base, "name": "Next season", "active_from": now + timedelta(days=10)},
        {
            **base,
            "name": "Last season",
            "active_from": now - timedelta(days=90),
            "active_until": now - timedelta(days=1),
        },
    ]
    return specs


def create_catalog(program: Any, now: datetime) -> dict[str, Any]:
    """Tiers, earning rules and rewards through the project's services; returns the earning rules by name."""
    from loyalty.models import EarningRule, Tier
    from loyalty.services.rules import earning_rule_save
    from loyalty.services.tiers import tier_save
    from rewards.models import Reward
    from rewards.services import reward_save

    tiers = {
        name: tier_save(tier=Tier(program=program, name=name, rank=rank, threshold=Decimal(threshold)))
        for name, rank, threshold in TIERS
    }
    rules = {spec["name"]: earning_rule_save(rule=EarningRule(program=program, **spec)) for spec in RULES}
    for spec in reward_specs(now):
        tier_name = spec.pop("min_tier", None)
        reward_save(reward=Reward(program=program, min_tier=tiers[tier_name] if tier_name else None, **spec))
    return rules


INSERT_MEMBERS = """
INSERT INTO members_member (program_id, external_id, card, email, phone, first_name, last_name, birth_date,
                            enrolled_at, status, acquisition_channel, consent_email, consent_sms, consent_push,
                            referral_code, status_changed_at, erased_at, updated_at, referred_by_id, user_id)
SELECT %(program)s, 'att-' || g, lpad(g::text, 12, '0'), NULL, NULL, '', '', NULL,
       %(now)s::timestamptz - interval '1 day' - power(random(), 1.5) * interval '1460 days',
       CASE WHEN g <= %(active)s THEN 'active' WHEN mod(g, 4) = 0 THEN 'closed' ELSE 'suspended' END,
       '', false, false, false, 'ATT' || g, NULL, NULL, %(now)s, NULL, NULL
FROM generate_series(1, %(total)s) AS g
"""
# Who buys what: 8 % never bought, 10 % only before the pace window (zero pace), 77 % 1-8 entries over the
# last 400 days, 5 % 10-30 entries (frequent shoppers).
PLAN_ENTRIES = """
CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
SELECT id, since, CASE WHEN profile = 'dormant' THEN %(now)s::timestamptz - interval '181 days' ELSE %(now)s END
           AS until,
       CASE WHEN profile = 'none' THEN 0
            WHEN profile = 'dormant' AND since >= %(now)s::timestamptz - interval '181 days' THEN 0
            WHEN profile = 'dormant' THEN 1 + floor(random() * 3)
            WHEN profile = 'regular' THEN 1 + floor(random() * 8)
            ELSE 10 + floor(random() * 21) END::int AS entries
FROM (SELECT m.id, greatest(m.enrolled_at, %(now)s::timestamptz - interval '400 days') AS since,
             CASE WHEN u < 0.08 THEN 'none' WHEN u < 0.18 THEN 'dormant' WHEN u < 0.95 THEN 'regular'
                  ELSE 'frequent' END AS profile
      FROM (SELECT id, enrolled_at, random() AS u FROM members_member WHERE program_id = %(program)s) m) s
"""
# Earn 20-500 points (most of them small), 6 % returns of 10-99 points; in time order, as a ledger fills up.
INSERT_ENTRIES = """
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at, reason,
                           details, actor_id, counterpart_id)
SELECT %(program)s, id, CASE WHEN returned THEN 'reverse' ELSE 'earn' END,
       CASE WHEN returned THEN -(10 + floor(random() * 90)) ELSE 20 + floor(power(random(), 2) * 481) END,
       0, NULL, at, at, '', '{}', NULL, NULL
FROM (SELECT p.id, random() < 0.06 AS returned, p.since + random() * (p.until - p.since) AS at
      FROM bench_plan p CROSS JOIN LATERAL generate_series(1, p.entries) WHERE p.entries > 0) s
ORDER BY at
"""
# Available: a random share (skewed low) of the member's net points, the rest redeemed; 45 % hold a tier.
INSERT_ACCOUNTS = """
INSERT INTO loyalty_account (member_id, program_id, available, pending, debt, earned, redeemed, expired,
                             purchases, tier_id, tier_achieved_at, tier_review_at, tier_pinned_until, updated_at)
SELECT m.id, %(program)s, x.available, 0, 0, x.earned, greatest(0, x.net - x.available), 0, x.purchases,
       t.id, CASE WHEN t.id IS NOT NULL THEN %(now)s::timestamptz - interval '30 days' END,
       CASE WHEN t.id IS NOT NULL THEN %(now)s::timestamptz + interval '335 days' END, NULL, %(now)s
FROM members_member m
LEFT JOIN (SELECT member_id, sum(amount) AS net, sum(amount) FILTER (WHERE kind = 'earn') AS earned,
                  count(*) FILTER (WHERE kind = 'earn') AS purchases
           FROM loyalty_entry WHERE program_id = %(program)s GROUP BY member_id) e ON e.member_id = m.id
CROSS JOIN LATERAL (SELECT floor(greatest(coalesce(e.net, 0), 0) * power(random(), 1.5))::bigint AS available,
                           coalesce(e.earned, 0) AS earned, coalesce(e.net, 0) AS net,
                           coalesce(e.purchases, 0) AS purchases, random() AS r) x
LEFT JOIN loyalty_tier t ON t.program_id = %(program)s
      AND t.rank = CASE WHEN x.r < 0.55 THEN NULL WHEN x.r < 0.80 THEN 1 WHEN x.r < 0.93 THEN 2 ELSE 3 END
WHERE m.program_id = %(program)s
"""
# Each earn entry's awards: the base rate, the books multiplier on one in seven, a 50-point bonus on one in
# five of 100 points or more (so the what-if's rate share is below 1 for some members).
INSERT_AWARDS = """
INSERT INTO loyalty_award (program_id, member_id, rule_id, rule_name, entry_id, event, points, local_date,
                           basis, created_at)
SELECT e.program_id, e.member_id, v.rule_id, v.rule_name, e.id, '', v.points,
       (e.occurred_at AT TIME ZONE %(tz)s)::date, '{}'::jsonb, e.occurred_at
FROM (SELECT id, program_id, member_id, amount, occurred_at,
             CASE WHEN mod(id, 7) = 0 THEN amount / 3 ELSE 0 END AS doubled,
             CASE WHEN amount >= 100 AND mod(id, 5) = 0 THEN 50 ELSE 0 END AS bonus
      FROM loyalty_entry WHERE program_id = %(program)s AND kind = 'earn') e
CROSS JOIN LATERAL (VALUES (%(base)s, %(base_name)s, e.amount - e.doubled - e.bonus),
                           (%(multiplier)s, %(multiplier_name)s, e.doubled),
                           (%(bonus)s, %(bonus_name)s, e.bonus)) AS v(rule_id, rule_name, points)
WHERE v.points > 0
"""


def load_population(program: Any, rules: dict[str, Any], active: int, now: datetime, seed: int) -> None:
    """Members, entries, accounts and awards of one program, set-based (a million members in minutes)."""
    from django.db import connection

    names = {"base": "Base rate", "multiplier": "Books x2", "bonus": "Basket over 1000"}
    params = {
        "program": program.pk, "now": now, "active": active, "total": active + active // 25, "tz": TIME_ZONE,
        **{key: rules[name].pk for key, name in names.items()},
        **{f"{key}_name": name for key, name in names.items()},
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        for label, statement in (
            ("members", INSERT_MEMBERS),
            ("plan", PLAN_ENTRIES),
            ("plan statistics", "ANALYZE bench_plan"),
            ("ledger entries", INSERT_ENTRIES),
            ("entry statistics", "ANALYZE members_member, loyalty_entry"),
            ("accounts", INSERT_ACCOUNTS),
            ("awards", INSERT_AWARDS),
        ):
            started = time.perf_counter()
            cursor.execute(statement, params)
            rows = f"{cursor.rowcount:,} rows" if cursor.rowcount >= 0 else "done"
            log(f"  {label}: {rows} in {time.perf_counter() - started:.1f} s")


# The heavy member's earn entries, one lot each (expiring 365 days after): spent when older than 200 days
# (those older than 365 days would have expired otherwise), half spent between 200 and 120 days, whole after.
HEAVY_EARN = """
WITH earn AS (
    INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at,
                               reason, details, actor_id, counterpart_id)
    SELECT %(program)s, %(member)s, 'earn', 20 + floor(power(random(), 2) * 281), 0, NULL, at, at, '', '{}',
           NULL, NULL
    FROM (SELECT %(now)s::timestamptz - interval '400 days' + (g - random()) * (interval '400 days' / %(earn)s)
                 AS at
          FROM generate_series(1, %(earn)s) AS g) s
    ORDER BY at
    RETURNING id, amount, occurred_at
)
INSERT INTO loyalty_lot (program_id, member_id, entry_id, amount, remaining, pending, occurred_at, available_at,
                         expires_at, warned_at)
SELECT %(program)s, %(member)s, id, amount,
       CASE WHEN occurred_at <= %(now)s::timestamptz - interval '200 days' THEN 0
            WHEN occurred_at <= %(now)s::timestamptz - interval '120 days' THEN amount / 2
            ELSE amount END,
       false, occurred_at, occurred_at, occurred_at + interval '365 days', NULL
FROM earn
"""
# Returns of 10-99 points and redemptions of 100-600 points, spread over the same 400 days (no allocations:
# the endpoint never reads them).
HEAVY_DEBITS = """
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at, reason,
                           details, actor_id, counterpart_id)
SELECT %(program)s, %(member)s, CASE WHEN g <= %(reverse)s THEN 'reverse' ELSE 'redeem' END,
       CASE WHEN g <= %(reverse)s THEN -(10 + floor(random() * 90)) ELSE -(100 + floor(random() * 501)) END,
       0, NULL, at, at, '', '{}', NULL, NULL
FROM (SELECT g, %(now)s::timestamptz - random() * interval '400 days' AS at
      FROM generate_series(1, %(debits)s) AS g) s
"""
HEAVY_ACCOUNT = """
INSERT INTO loyalty_account (member_id, program_id, available, pending, debt, earned, redeemed, expired,
                             purchases, tier_id, tier_achieved_at, tier_review_at, tier_pinned_until, updated_at)
SELECT %(member)s, %(program)s,
       (SELECT coalesce(sum(remaining), 0) FROM loyalty_lot WHERE member_id = %(member)s),
       0, 0, coalesce(sum(amount) FILTER (WHERE kind = 'earn'), 0),
       coalesce(-sum(amount) FILTER (WHERE kind = 'redeem'), 0), 0, count(*) FILTER (WHERE kind = 'earn'),
       %(tier)s, %(now)s::timestamptz - interval '60 days', %(now)s::timestamptz + interval '305 days', NULL, %(now)s
FROM loyalty_entry WHERE member_id = %(member)s
"""
HEAVY_VOUCHERS = 3


def create_heavy_member(program: Any, entries: int, now: datetime) -> None:
    """The app member of the me/rewards/ measurement: `entries` ledger entries, a Gold tier, three vouchers
    of rewards limited per member (redeemed through `reward_redeem`, so those entries have allocations)."""
    from django.db import connection

    from loyalty.models import Tier
    from members.app_auth import member_app_user_set
    from members.services.members import member_create
    from rewards.attainability import rewards_on_offer
    from rewards.services import reward_redeem

    member = member_create(
        program=program, card=HEAVY_CARD, email="heavy@example.com", first_name="Heavy", last_name="Shopper",
        enrolled_at=now - timedelta(days=500),
    )  # fmt: skip
    earn, reverse = round(entries * 0.88), round(entries * 0.02)
    gold = Tier.objects.get(program=program, name="Gold")
    params = {"program": program.pk, "member": member.pk, "now": now, "earn": earn, "reverse": reverse,
              "debits": entries - earn - HEAVY_VOUCHERS, "tier": gold.pk}  # fmt: skip
    with connection.cursor() as cursor:
        for statement in (HEAVY_EARN, HEAVY_DEBITS, HEAVY_ACCOUNT):
            cursor.execute(statement, params)
    member_app_user_set(member=member, password=HEAVY_PASSWORD)
    limited = [
        reward
        for reward in rewards_on_offer(program_id=program.pk, now=now)
        if reward.per_member_limit and reward.stock != 0 and (reward.min_tier is None or reward.min_tier.rank <= 2)
    ]
    for reward in limited[:HEAVY_VOUCHERS]:
        reward_redeem(member=member, reward=reward)


def program_slug(size: int) -> str:
    return f"attain-{size}"


def ensure_program(size: int, heavy_entries: int | None, seed: int) -> tuple[Any, float | None]:
    """The program of `size` active members (one of them the me/rewards/ member when `heavy_entries` is
    given), and the seconds spent creating it (None: it was there).

    One transaction per program: a run stopped half-way leaves nothing behind (ledger rows cannot be
    deleted), and the next run starts that program again."""
    from django.db import transaction
    from django.utils import timezone

    from members.models import Program
    from members.services.programs import program_create

    program = Program.objects.filter(slug=program_slug(size)).first()
    if program is not None:
        return program, None
    log(f"creating program {program_slug(size)}: {size:,} active members")
    started, now = time.perf_counter(), timezone.now()
    with transaction.atomic():
        program = program_create(
            slug=program_slug(size), name=f"Attainability benchmark, {size:,} members", currency="EUR",
            timezone=TIME_ZONE, expiry_policy="days", expiry_period=EXPIRY_DAYS,
        )  # fmt: skip
        rules = create_catalog(program, now)
        load_population(program, rules, size - (1 if heavy_entries else 0), now, seed)
        if heavy_entries:
            ensure_heavy_member(program, heavy_entries)
        commit_started = time.perf_counter()
    log(f"  commit (the deferred foreign-key checks): {time.perf_counter() - commit_started:.1f} s")
    return program, time.perf_counter() - started


def ensure_heavy_member(program: Any, entries: int) -> None:
    """The me/rewards/ member, created in `program` unless it is there (say, after a change of --sizes)."""
    from django.db import transaction
    from django.utils import timezone

    from members.models import Member

    if Member.objects.filter(program=program, card=HEAVY_CARD).exists():
        return
    started = time.perf_counter()
    with transaction.atomic():
        create_heavy_member(program, entries, timezone.now())
    log(f"  the me/rewards/ member, {entries:,} entries: {time.perf_counter() - started:.1f} s")


LOADED_TABLES = (
    "members_member", "loyalty_account", "loyalty_entry", "loyalty_lot", "loyalty_award", "loyalty_tier",
    "rewards_reward", "rewards_voucher", "members_accesstoken",
)  # fmt: skip


def vacuum_analyze(url: str, vacuum: bool) -> None:
    """Planner statistics (the server may run without autovacuum) and, after loading, VACUUM: hint bits and
    the visibility map are set once here, not by whichever measurement reads the new rows first."""
    command = "VACUUM (ANALYZE) {}" if vacuum else "ANALYZE {}"
    with psycopg.connect(url, autocommit=True) as conn:
        for table in LOADED_TABLES:
            conn.execute(sql.SQL(command).format(sql.Identifier(table)))


class LoadMeter:
    """Cores busy on the whole machine and in this process while a phase runs (/proc/stat, os.times). The
    difference is PostgreSQL (this benchmark's backend and its parallel workers) plus any other work on the
    machine, which skews the figures."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float | None, float, float]:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]  # user..steal
            busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        except (OSError, ValueError):
            busy = None
        own = os.times()
        return busy, own.user + own.system, time.monotonic()

    def stop(self) -> dict[str, float | None]:
        (busy, own, end), (busy0, own0, start) = self._sample(), self.start
        seconds = end - start
        return {
            "seconds": round(seconds, 1),
            "busy_cores": None if busy is None or busy0 is None else round((busy - busy0) / seconds, 2),
            "own_cores": round((own - own0) / seconds, 2),
        }


# --- me/rewards/ ---------------------------------------------------------------------------------------------


def wsgi_get(app: Any, path: str, query: str, token: str) -> tuple[int, bytes]:
    """One request through the WSGI application, as gunicorn calls it."""
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT": "application/json",
        "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip
    status: list[str] = []
    result = app(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        data = b"".join(result)
    finally:
        result.close()
    return int(status[0].split()[0]), data


REWARDS_PATH = "/api/app/v1/me/rewards/"
HAND_MEMBER = """
SELECT m.id, m.status, m.enrolled_at, p.id, p.timezone, p.attainability_window_days
FROM members_accesstoken k JOIN members_member m ON m.user_id = k.user_id JOIN members_program p ON p.id = m.program_id
WHERE k.digest = encode(sha256(convert_to(%s, 'UTF8')), 'hex') AND p.is_active AND m.status <> 'closed'"""
HAND_REWARDS = """
SELECT r.id, r.name, r.description, r.kind, r.value, r.points_cost, r.min_tier_id, t.name, t.rank, r.min_basket,
       r.active_until, r.stock, r.per_member_limit, r.voucher_valid_days
FROM rewards_reward r LEFT JOIN loyalty_tier t ON t.id = r.min_tier_id
WHERE r.program_id = %s AND r.is_active AND (r.active_from IS NULL OR r.active_from <= %s)
  AND (r.active_until IS NULL OR r.active_until > %s)
ORDER BY r.points_cost, r.id LIMIT %s"""
HAND_ACCOUNT = """
SELECT a.available, t.rank FROM loyalty_account a LEFT JOIN loyalty_tier t ON t.id = a.tier_id WHERE a.member_id = %s"""
HAND_HELD = """
SELECT reward_id, count(*) FROM rewards_voucher
WHERE member_id = %s AND reward_id = ANY(%s) AND status <> 'cancelled' GROUP BY reward_id"""
HAND_PACE = """
SELECT coalesce(sum(amount), 0) FROM loyalty_entry
WHERE member_id = %s AND kind IN ('earn', 'reverse') AND occurred_at > %s AND occurred_at <= %s"""
HAND_EXPIRING = """
SELECT (expires_at AT TIME ZONE %s)::date AS day, sum(remaining) FROM loyalty_lot
WHERE member_id = %s AND remaining > 0 AND expires_at > %s GROUP BY 1 ORDER BY 1"""


def hand_member_reads(token: str) -> dict[str, Any]:
    """What me/rewards/ reads, by hand on Django's connection: six statements, the rows fetched, no more."""
    from django.db import connection

    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(HAND_MEMBER, [token])
        member_id, _, _, program_id, tz, window = cursor.fetchone()
        cursor.execute(HAND_REWARDS, [program_id, now, now, PAGE_SIZE])
        rewards = cursor.fetchall()
        cursor.execute(HAND_ACCOUNT, [member_id])
        available, _ = cursor.fetchone()
        cursor.execute(HAND_HELD, [member_id, [row[0] for row in rewards if row[12] is not None]])
        held = cursor.fetchall()
        cursor.execute(HAND_PACE, [member_id, now - timedelta(days=window), now])
        earned = cursor.fetchone()[0]
        cursor.execute(HAND_EXPIRING, [tz, member_id, now])
        expiring = cursor.fetchall()
    return {"rewards": [row[0] for row in rewards], "available": available, "held": held, "earned": earned,
            "expiring_days": len(expiring)}  # fmt: skip


@dataclass
class Latency:
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    queries: float


def latency_of(path: str, seconds: list[float], queries: float) -> Latency:
    ordered = sorted(seconds)
    ms = [round(value * 1000, 2) for value in (*(percentile(ordered, f) for f in (0.5, 0.95, 0.99)), fmean(ordered))]
    return Latency(path, len(ordered), *ms, queries=queries)


def time_calls(call: Callable[[], Any], count: int) -> list[float]:
    clock, latencies = time.perf_counter, []
    for _ in range(count):
        began = clock()
        call()
        latencies.append(clock() - began)
    return latencies


def queries_per_call(call: Callable[[], Any]) -> int:
    """SQL statements of one call, as CaptureQueriesContext logs them (the log starts empty: a request's
    `request_started` signal empties it, which would otherwise skew the count)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def heavy_member(program: Any) -> tuple[Any, str]:
    """The me/rewards/ member and an app token, signed in the way the app signs in."""
    from members.app_auth import member_app_login
    from members.models import Member

    member = Member.objects.select_related("program").get(program=program, card=HEAVY_CARD)
    _, token = member_app_login(program_slug=program.slug, card=HEAVY_CARD, password=HEAVY_PASSWORD)
    return member, token


def member_paths(member: Any, token: str) -> dict[str, Callable[[], Any]]:
    """The three ways to answer: the endpoint, its selector alone, the reads by hand."""
    from django.core.wsgi import get_wsgi_application
    from django.utils import timezone

    from rewards.attainability import member_reward_list, rewards_on_offer

    app = get_wsgi_application()

    def api() -> Any:
        status, body = wsgi_get(app, REWARDS_PATH, f"page_size={PAGE_SIZE}", token)
        if status != 200:
            raise SystemExit(f"GET {REWARDS_PATH} answered {status}: {body[:300]!r}")
        return json.loads(body)

    def selector() -> Any:
        now = timezone.now()
        rewards = list(rewards_on_offer(program_id=member.program_id, now=now)[:PAGE_SIZE])
        return member_reward_list(member=member, rewards=rewards, now=now)

    return {"API (WSGI, in process)": api, "member_reward_list": selector, "hand SQL": lambda: hand_member_reads(token)}


def check_member_answers(api: dict[str, Any], hand: dict[str, Any]) -> None:
    """The hand reads see what the endpoint shows: the same rewards, in the same order, and the same balance."""
    results = api["results"]
    shown = ([item["id"] for item in results], results[0]["attainability"]["available"])
    if shown != (hand["rewards"], hand["available"]):
        raise SystemExit("me/rewards/ and the hand-written reads disagree on the rewards or the balance")


def measure_member(program: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then `--requests` timed calls per path in `--rounds` rounds that alternate the order."""
    from django.db.models import Count, Q

    member, token = heavy_member(program)
    paths = member_paths(member, token)
    meter = LoadMeter()
    answers = {name: call() for name, call in paths.items()}
    check_member_answers(answers["API (WSGI, in process)"], answers["hand SQL"])
    for call in paths.values():
        time_calls(call, args.warmup)
    log(f"me/rewards/: {args.requests} timed calls per path in {args.rounds} rounds")
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.rounds):
        share = args.requests * (r + 1) // args.rounds - args.requests * r // args.rounds
        for name in list(paths)[:: 1 if r % 2 == 0 else -1]:
            timings[name] += time_calls(paths[name], share)
    rows = [latency_of(name, timings[name], queries_per_call(call)) for name, call in paths.items()]
    ledger = member.ledger_entries.aggregate(entries=Count("id"), earn=Count("id", filter=Q(kind="earn")))
    lots = member.lots.aggregate(lots=Count("id"), live=Count("id", filter=Q(remaining__gt=0)))
    api = answers["API (WSGI, in process)"]
    return {
        "member_id": member.pk,
        **ledger,
        **lots,
        "vouchers": member.vouchers.count(),
        "rewards": len(api["results"]),
        "redeemable": sum(item["blocked_by"] is None for item in api["results"]),
        "pace_per_day": api["results"][0]["attainability"]["pace_per_day"],
        "expiring_days": answers["hand SQL"]["expiring_days"],
        "rows": rows,
        "ratio": round(rows[2].p50_ms / rows[0].p50_ms, 3),
        "cpu": meter.stop(),
    }


# --- The program report --------------------------------------------------------------------------------------

SUMMARY_KEYS = (
    "active_members", "share_redeemable_now", "share_within_20_percent", "days_to_first_reward_median",
    "days_to_first_reward_p75", "members_never_at_pace",
)  # fmt: skip


def _days(value: float | None) -> int | None:
    """percentile_disc's answer as the report gives it: None for 'never' ('Infinity')."""
    return None if value is None or value == float("inf") else int(value)


def hand_report(program_id: int, now: datetime) -> dict[str, Any]:
    """bench/attainability_report.sql on Django's connection, in the report's shape."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(REPORT_SQL.read_text(), {"program": program_id, "now": now})
        active, redeemable, within, p50, p75, never, rewards = cursor.fetchone()
    return {
        "active_members": active,
        "share_redeemable_now": round(redeemable / active, 4) if active else 0.0,
        "share_within_20_percent": round(within / active, 4) if active else 0.0,
        "days_to_first_reward_median": _days(p50),
        "days_to_first_reward_p75": _days(p75),
        "members_never_at_pace": never,
        "rewards": json.loads(rewards) if isinstance(rewards, str) else rewards,
    }


def report_differences(ours: dict[str, Any], hand: dict[str, Any]) -> list[str]:
    differences = [
        f"{key}: report {ours[key]!r}, hand SQL {hand[key]!r}" for key in SUMMARY_KEYS if ours[key] != hand[key]
    ]
    if len(ours["rewards"]) != len(hand["rewards"]):
        differences.append(f"rewards: report {len(ours['rewards'])}, hand SQL {len(hand['rewards'])}")
    for mine, theirs in zip(ours["rewards"], hand["rewards"], strict=False):
        if mine != theirs:
            differences.append(f"reward #{mine['id']}: report {mine}, hand SQL {theirs}")
    return differences


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (Linux; getrusage's maxrss follows it), so that the
    next reading is the peak of what ran since."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident set (VmRSS) or its peak (VmHWM) from /proc, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class ReportTiming:
    size: int
    active_members: int
    entries_in_window: int
    ours_s: list[float]
    hand_s: list[float]
    ours_median_s: float
    hand_median_s: float
    ratio: float
    what_if_s: float
    checked: int
    rss_before_mb: float | None
    peak_rss_mb: float
    peak_reset: bool
    cpu: dict[str, float | None]
    summary: dict[str, Any]


def entries_in_window(program: Any, now: datetime) -> int:
    from loyalty.models import Entry

    start = now - timedelta(days=program.attainability_window_days)
    return Entry.objects.filter(program=program, kind__in=("earn", "reverse"), occurred_at__gt=start).count()


def session_jit(off: bool) -> None:
    """With --no-jit, JIT compilation off for this session (set again before each report: a request of the
    me/rewards/ phase may have replaced the connection)."""
    from django.db import connection

    if off:
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")


def measure_report(program: Any, size: int, repeat: int, no_jit: bool = False) -> ReportTiming:
    """`repeat` rounds of the report and the hand SQL at one `now` each, alternating which goes first; every
    pair must agree. Then the what-if once."""
    from django.utils import timezone

    from rewards.attainability import WhatIf, program_report

    rss_before, reset, meter = rss_mb(), reset_peak_rss(), LoadMeter()
    times: dict[str, list[float]] = {"ours": [], "hand": []}
    report: dict[str, Any] = {}
    for r in range(repeat):
        session_jit(no_jit)
        now = timezone.now()
        answers = {}
        for name in ("ours", "hand")[:: 1 if r % 2 == 0 else -1]:
            started = time.perf_counter()
            answers[name] = (
                program_report(program=program, now=now)["current"] if name == "ours" else hand_report(program.pk, now)
            )
            times[name].append(round(time.perf_counter() - started, 3))
        if differences := report_differences(answers["ours"], answers["hand"]):
            raise SystemExit(
                f"{program.slug}: the hand SQL and program_report disagree:\n  " + "\n  ".join(differences[:20])
            )
        report = answers["ours"]
        log(f"  {program.slug} round {r + 1}: report {times['ours'][-1]:.2f} s, hand SQL {times['hand'][-1]:.2f} s")
    session_jit(no_jit)
    started = time.perf_counter()
    program_report(program=program, what_if=WhatIf(base_rate_multiplier=Decimal("1.5")))
    what_if = time.perf_counter() - started
    ours, hand = median(times["ours"]), median(times["hand"])
    return ReportTiming(
        size=size,
        active_members=report["active_members"],
        entries_in_window=entries_in_window(program, timezone.now()),
        ours_s=times["ours"],
        hand_s=times["hand"],
        ours_median_s=round(ours, 3),
        hand_median_s=round(hand, 3),
        ratio=round(hand / ours, 3),
        what_if_s=round(what_if, 3),
        checked=repeat,
        rss_before_mb=rss_before,
        peak_rss_mb=maxrss_mb(),
        peak_reset=reset,
        cpu=meter.stop(),
        summary={key: report[key] for key in SUMMARY_KEYS[1:]},
    )


# --- Report --------------------------------------------------------------------------------------------------


def machine_facts(url: str) -> dict[str, Any]:
    import django
    import numpy

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    names = ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit", "autovacuum")
    with psycopg.connect(url, autocommit=True) as conn:
        server = {name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0] for name in names}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "numpy": numpy.__version__,
        "psycopg": psycopg.__version__,
        **{f"pg_{k}": v.split()[0] if k == "server_version" else v for k, v in server.items()},
    }


def data_facts(programs: dict[int, Any]) -> list[dict[str, Any]]:
    from django.db.models import Count, Q

    from loyalty.models import Award, Entry
    from members.models import Member

    facts = []
    for size, program in programs.items():
        members = Member.objects.filter(program=program).aggregate(
            all=Count("id"), active=Count("id", filter=Q(status="active"))
        )
        facts.append(
            {
                "size": size,
                "program": program.slug,
                "members": members["all"],
                "active": members["active"],
                "entries": Entry.objects.filter(program=program).count(),
                "awards": Award.objects.filter(program=program).count(),
            }
        )
    return facts


def member_lines(m: dict[str, Any]) -> list[str]:
    header = f"{'path':<24} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'queries':>8}"
    lines = [header, "-" * len(header)]
    for r in m["rows"]:
        lines.append(
            f"{r.path:<24} {r.requests:>6} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} {r.mean_ms:>8.2f} "
            f"{r.queries:>8}"
        )
    lines.append(f"ratio hand-SQL p50 / API p50: {m['ratio']:.2f}")
    return lines


def report_lines(timings: list[ReportTiming]) -> list[str]:
    header = (
        f"{'active':>10} {'in window':>10} {'report s':>9} {'hand s':>8} {'hand/ours':>9} {'what-if s':>9} "
        f"{'checked':>7} {'RSS MB':>7} {'peak MB':>8}"
    )
    lines = [header, "-" * len(header)]
    for t in timings:
        lines.append(
            f"{t.active_members:>10,} {t.entries_in_window:>10,} {t.ours_median_s:>9.2f} {t.hand_median_s:>8.2f} "
            f"{t.ratio:>9.2f} {t.what_if_s:>9.2f} {t.checked:>7} {t.rss_before_mb or 0:>7.0f} {t.peak_rss_mb:>8.0f}"
        )
    lines.append("runs (s), report: " + "; ".join(f"{t.active_members:,}: {t.ours_s}" for t in timings))
    lines.append("runs (s), hand:   " + "; ".join(f"{t.active_members:,}: {t.hand_s}" for t in timings))
    for t in timings:
        s = t.summary
        lines.append(
            f"{t.active_members:,} members: redeemable now {s['share_redeemable_now']:.2%}, within 20 % "
            f"{s['share_within_20_percent']:.2%}, days to a first reward median {s['days_to_first_reward_median']}"
            f", p75 {s['days_to_first_reward_p75']}, never at their pace {s['members_never_at_pace']:,}"
        )
    return lines


def cpu_text(cpu: dict[str, float | None]) -> str:
    busy = "not measured" if cpu["busy_cores"] is None else f"{cpu['busy_cores']:.2f}"
    return (
        f"over {cpu['seconds']} s the machine's busy cores were {busy} of {os.cpu_count()}, this process's "
        f"{cpu['own_cores']:.2f} (the rest: PostgreSQL and any other work on the machine)"
    )


def report(facts: dict[str, Any], setup: dict[str, Any], member: dict[str, Any], timings: list[ReportTiming]) -> str:
    data = [
        f"{d['program']}: {d['active']:,} active members of {d['members']:,}, {d['entries']:,} ledger entries, "
        f"{d['awards']:,} awards; 50 rewards on offer, 3 not; 3 tiers"
        for d in setup["data"]
    ]
    built = ", ".join(
        f"{slug} {'reused' if seconds is None else f'created in {seconds:.0f} s'}" for slug, seconds in setup["built"]
    )
    return "\n".join(
        [
            f"Attainability benchmark, {facts['date']}",
            f"machine:  {facts['cpu']}, {facts['cores']} cores, {facts['os']}",
            f"software: Python {facts['python']}, Django {facts['django']}, NumPy {facts['numpy']}, "
            f"psycopg {facts['psycopg']}, PostgreSQL {facts['pg_server_version']} (shared_buffers="
            f"{facts['pg_shared_buffers']}, work_mem={facts['pg_work_mem']}, max_parallel_workers_per_gather="
            f"{facts['pg_max_parallel_workers_per_gather']}, jit={facts['pg_jit']}, "
            f"autovacuum={facts['pg_autovacuum']}); "
            "client and server on this machine",
            "data:     " + "\n          ".join(data),
            f"set-up:   {built}; {setup['analyze']} in {setup['analyze_s']:.0f} s (account balances are not "
            "derived from the entries; see the docstring)",
            "",
            f"GET {REWARDS_PATH}?page_size={PAGE_SIZE}: member #{member['member_id']} with {member['entries']:,} "
            f"ledger entries ({member['earn']:,} earn), {member['lots']:,} lots ({member['live']:,} with points, "
            f"expiring on {member['expiring_days']} days), {member['vouchers']} vouchers; {member['rewards']} "
            f"rewards shown, {member['redeemable']} redeemable; pace {member['pace_per_day']} points/day",
            f"{setup['requests']} timed calls per path in {setup['rounds']} alternating rounds after "
            f"{setup['warmup']} warm-up calls; queries: as CaptureQueriesContext counts them in one call",
            *member_lines(member),
            f"cpu: {cpu_text(member['cpu'])}",
            "",
            f"Program report: program_report(program=...) against bench/attainability_report.sql (one query, same "
            f"connection), median of {setup['repeat']} runs each at the same now, alternating; every run's "
            "numbers checked equal; what-if: base rate x 1.5, once; "
            + ("jit off for the reports (--no-jit)" if setup["no_jit"] else "jit as the server has it"),
            *report_lines(timings),
            *(f"cpu, {t.active_members:,}: {cpu_text(t.cpu)}" for t in timings),
            "RSS MB: this process's resident memory before the size's reports; peak MB: getrusage's maxrss after "
            + (
                "them, its peak reset before them (/proc/self/clear_refs): the peak of the reports and the what-if"
                if all(t.peak_reset for t in timings)
                else "them (no reset possible here: the peak of the whole run so far)"
            ),
            f"peak RSS before the reports (set-up, me/rewards/): {setup['maxrss_before_reports_mb']:.0f} MB",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, recreate=args.recreate, mark=DATABASE_MARK)
    setup_django(args.database_url)

    started = time.perf_counter()
    programs, built = {}, []
    for size in args.sizes:
        heavy = args.entries if size == args.sizes[0] else None
        programs[size], seconds = ensure_program(size, heavy, args.seed)
        built.append((program_slug(size), seconds))
    ensure_heavy_member(programs[args.sizes[0]], args.entries)
    analyze_started = time.perf_counter()
    fresh = any(seconds is not None for _, seconds in built)
    vacuum_analyze(args.database_url, vacuum=fresh)
    setup: dict[str, Any] = {
        "built": built,
        "analyze": "VACUUM ANALYZE" if fresh else "ANALYZE",
        "analyze_s": time.perf_counter() - analyze_started,
        "data": data_facts(programs),
        **{key: getattr(args, key) for key in ("requests", "warmup", "rounds", "repeat", "seed", "entries", "no_jit")},
    }
    log(f"set-up done in {time.perf_counter() - started:.1f} s")

    member = measure_member(programs[args.sizes[0]], args)
    setup["maxrss_before_reports_mb"] = maxrss_mb()
    timings = []
    for size, program in programs.items():
        log(f"program report, {size:,} members: {args.repeat} runs per path")
        timings.append(measure_report(program, size, args.repeat, no_jit=args.no_jit))
    facts = machine_facts(args.database_url)
    if args.json:
        member_json = {**member, "rows": [asdict(row) for row in member["rows"]]}
        document = {"machine": facts, "setup": setup, "member": member_json, "reports": [asdict(t) for t in timings]}
        print(json.dumps(document, indent=2, default=str))
    else:
        print(report(facts, setup, member, timings))
    log(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
