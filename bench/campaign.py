"""Campaign vouchers in bulk: `campaign_issue` for 100,000 members against one hand-written INSERT ... SELECT.

Run from the project root (PostgreSQL on 127.0.0.1:5432 by default):

    .venv/bin/python bench/campaign.py [--members 100000] [--rounds 3] [--json]

Set-up (not measured, reused on the next run): its own database, a program, `--members` members with
accounts (bulk inserts, as bench/ledger.py does) and one reward. Then `--rounds` rounds, each timing:

- service:  `campaign_issue(...)` to every active member (codes from `secrets` in Python, 60 bits,
  Crockford base32; batches of 2,000 ids read by keyset and inserted with one multi-row INSERT each;
  one transaction);
- hand SQL: one `INSERT INTO rewards_voucher ... SELECT ... FROM members_member` with 12-character codes
  made in SQL from `md5(random())` (48 bits: cheaper codes than the service's), then one
  `INSERT INTO members_outboxevent ... SELECT` of their `voucher.issued` events with the same payload built by
  `jsonb_build_object`, one transaction.

Both write the same columns into the same tables, with their indexes (vouchers' unique (program, code), the
outbox's unique event id). After each phase the run checks that every member got exactly one voucher of that
campaign with a distinct code and one `voucher.issued` event for it, then deletes the campaign's vouchers and
events so that the tables do not grow from run to run.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import ensure_database, ensure_members, ensure_program, log, setup_django  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_campaign"
DATABASE_MARK = "created by bench/campaign.py, the campaign voucher benchmark"

HAND_SQL = """
INSERT INTO rewards_voucher (program_id, member_id, reward_id, code, kind, value, min_basket, status,
                             issued_at, expires_at, points_cost, redeemed_reference, redeem_key, campaign)
SELECT m.program_id, m.id, %(reward)s, upper(substr(md5(random()::text || m.id::text), 1, 12)), %(kind)s,
       %(value)s, NULL, 'issued', now(), now() + interval '30 days', 0, '', NULL, %(campaign)s
FROM members_member m
WHERE m.program_id = %(program)s AND m.status = 'active'
"""

HAND_EVENTS_SQL = """
INSERT INTO members_outboxevent (event_id, program_id, member_id, type, version, data, occurred_at, created_at)
SELECT 'evt_' || md5(random()::text || v.id::text), v.program_id, v.member_id, 'voucher.issued', 1,
       jsonb_build_object(
           'member_id', v.member_id, 'voucher_id', v.id, 'code', v.code,
           'reward', jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind, 'points_cost', r.points_cost),
           'value', v.value::text, 'min_basket', v.min_basket::text,
           'expires_at', to_char(v.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'campaign', v.campaign),
       v.issued_at, now()
FROM rewards_voucher v JOIN rewards_reward r ON r.id = v.reward_id
WHERE v.program_id = %(program)s AND v.campaign = %(campaign)s
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help=f"default: BENCH_DATABASE_URL or {DEFAULT_DATABASE_URL}")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recreate", action="store_true", help="drop and recreate the benchmark's database")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser.parse_args()


def ensure_reward(program: Any) -> Any:
    from rewards.models import Reward, RewardKind

    reward, _ = Reward.objects.get_or_create(
        program=program,
        name="Come back: 5 EUR off",
        defaults={"kind": RewardKind.FIXED_DISCOUNT, "value": 5, "points_cost": 500},
    )
    return reward


class StatementCounter:
    """Counts the statements Django sends (DEBUG stays off, as in production)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def verify_and_clear(program: Any, campaign: str, members: int) -> None:
    from django.db import connection
    from django.db.models import Count

    from rewards.models import Voucher

    vouchers = Voucher.objects.filter(program=program, campaign=campaign)
    facts = vouchers.aggregate(rows=Count("id"), members=Count("member_id", distinct=True))
    codes = vouchers.values("code").distinct().count()
    if not facts["rows"] == facts["members"] == codes == members:
        raise SystemExit(f"campaign {campaign}: {facts} and {codes} distinct codes for {members} members")
    events = campaign_events(program, campaign)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT (data->>'voucher_id')::bigint) FROM members_outboxevent {events}"
        )
        if cursor.fetchone() != (members, members):
            raise SystemExit(f"campaign {campaign}: not one voucher.issued per voucher")
        cursor.execute(f"DELETE FROM members_outboxevent {events}")
        cursor.execute("DELETE FROM rewards_voucher WHERE program_id = %s AND campaign = %s", [program.pk, campaign])


def campaign_events(program: Any, campaign: str) -> str:
    """The WHERE clause of a campaign's events (names from the benchmark itself, no user input)."""
    return f"WHERE program_id = {int(program.pk)} AND type = 'voucher.issued' AND data->>'campaign' = '{campaign}'"


def service_round(program: Any, reward: Any, campaign: str) -> tuple[float, int, int]:
    from django.db import connection

    from rewards.selectors import campaign_members
    from rewards.services import campaign_issue

    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        issued = campaign_issue(
            program=program, reward=reward, members_queryset=campaign_members(program=program), campaign=campaign
        )
        seconds = time.perf_counter() - started
    return seconds, issued, counter.count


def hand_round(program: Any, reward: Any, campaign: str) -> tuple[float, int]:
    from django.db import connection, transaction

    params = {"program": program.pk, "reward": reward.pk, "kind": reward.kind, "value": reward.value}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(HAND_SQL, {**params, "campaign": campaign})
        issued = cursor.rowcount
        cursor.execute(HAND_EVENTS_SQL, {"program": program.pk, "campaign": campaign})
    return time.perf_counter() - started, issued


def main() -> None:
    args = parse_args()
    url = args.database_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    ensure_database(url, recreate=args.recreate, mark=DATABASE_MARK)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    program = ensure_program()
    started = time.perf_counter()
    ensure_members(program, args.members)
    reward = ensure_reward(program)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM members_outboxevent WHERE data->>'campaign' LIKE 'bench-%%'")
        cursor.execute("DELETE FROM rewards_voucher WHERE campaign LIKE 'bench-%%'")
        cursor.execute("ANALYZE members_member; ANALYZE rewards_voucher")
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    log(f"set-up {time.perf_counter() - started:.1f} s")

    service, hand, statements = [], [], 0
    for round_no in range(args.rounds):
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        seconds, issued, statements = service_round(program, reward, f"bench-service-{round_no}")
        verify_and_clear(program, f"bench-service-{round_no}", args.members)
        service.append(seconds)
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        seconds, issued_by_hand = hand_round(program, reward, f"bench-hand-{round_no}")
        verify_and_clear(program, f"bench-hand-{round_no}", args.members)
        hand.append(seconds)
        if issued != issued_by_hand:
            raise SystemExit(f"service issued {issued}, hand SQL {issued_by_hand}")

    result = {
        "members": args.members,
        "rounds": args.rounds,
        "service_seconds": [round(s, 3) for s in service],
        "hand_sql_seconds": [round(s, 3) for s in hand],
        "service_median_s": round(median(service), 3),
        "hand_sql_median_s": round(median(hand), 3),
        "service_vouchers_per_s": round(args.members / median(service)),
        "hand_sql_vouchers_per_s": round(args.members / median(hand)),
        "ratio": round(median(hand) / median(service), 2),
        "service_statements": statements,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "postgresql": server,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"Campaign vouchers for {args.members:,} members, {args.rounds} rounds, PostgreSQL {server}")
    print(f"machine: {result['machine']}, Python {result['python']}")
    print(f"{'path':<10}{'median s':>10}{'vouchers/s':>12}  rounds (s)")
    for name, times, rate in [
        ("service", service, result["service_vouchers_per_s"]),
        ("hand SQL", hand, result["hand_sql_vouchers_per_s"]),
    ]:
        print(f"{name:<10}{median(times):>10.2f}{rate:>12,}  {[round(s, 2) for s in times]}")
    print(f"ratio (hand SQL time / service time): {result['ratio']}")
    print(f"service statements for the whole campaign: {statements} (no query per code)")


if __name__ == "__main__":
    main()
