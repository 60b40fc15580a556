"""Accrual throughput: POST /api/pos/v1/purchases/ under gunicorn against the same writes in pgbench.

Run from the project root (PostgreSQL on 127.0.0.1:5432 by default, pgbench on the PATH or in
/usr/lib/postgresql/*/bin):

    .venv/bin/python bench/accrual.py [--recreate] [--members 100000] [--connections 8] [--duration 30] [--json]

The database is `BENCH_DATABASE_URL` or `--database-url` (the application's `DATABASE_URL` is ignored);
the benchmark only runs on a database it created itself (marked with a comment), as bench/ledger.py.

One run does everything, in about three minutes once the data exists (add half a minute for the
first run's set-up):

1. set-up: creates the database `loyalty_bench_accrual` if missing and migrates it; a program
   (CZK, Europe/Prague, 14-day return window, points expire after 365 days) with three tiers,
   20 active earning rules saved with `earning_rule_save` (base rate with exclusions, multipliers
   by category, channel, store, weekday and tier, bonuses on minimum basket, n-th purchase, SKUs,
   some with per-member daily or monthly caps, one with a total budget), `--members` members with
   accounts (bulk inserts, reused on the next run; a fifth of them hold a tier) and a new API key;
   then ANALYZE of the tables a purchase touches (the server may run without autovacuum), and a
   CHECKPOINT before each measured phase, so that no phase pays for the writes of the one before;
2. the API: gunicorn serving config.wsgi on 127.0.0.1 (a free port; by default 2 gthread
   workers of 2 threads, one process per core; DEBUG unset, THROTTLE_POS very high), and a load
   generator in this process (threads, `http.client`, keep-alive connections) posting purchases:
   a random member by card or id, 1-5 lines from a catalogue of categories, unique external ids,
   an Idempotency-Key, channel and store variety. Phases: warm-up; closed loop with `--connections` connections for
   `--duration` seconds (the maximum rate); open loop at half that rate (Poisson arrivals,
   latency counted from the scheduled send time, so a stalled server is not hidden);
3. the ceiling: pgbench running bench/accrual_pgbench.sql (lock the account, insert the entry,
   its lot and the purchase, update the account) with the same number of clients and duration,
   in the same program and member range;
4. where the time goes: purchases through the same WSGI application in this process, one at a
   time, with the SQL statements per purchase (CaptureQueriesContext), the round trips and
   transactions, the time spent waiting for PostgreSQL, and a cProfile breakdown;
5. `ledger_audit` over the program (API and pgbench rows alike), which must find no mismatch.

Everything shares the machine's cores: gunicorn, PostgreSQL and the load generator (or pgbench).
The report says how much CPU each used.
"""

import argparse
import cProfile
import http.client
import io
import itertools
import json
import math
import os
import platform
import pstats
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from ledger import create_members, ensure_database  # bench/ is the script's folder, first on sys.path
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PGBENCH_SCRIPT = Path(__file__).resolve().parent / "accrual_pgbench.sql"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_accrual"
PROGRAM_SLUG = "bench-accrual"
CURRENCY = "CZK"
TIME_ZONE = "Europe/Prague"
PENDING_DAYS = 14
EXPIRY_DAYS = 365
PATH = "/api/pos/v1/purchases/"
DATABASE_MARK = "created by bench/accrual.py, the accrual benchmark"
CENT = Decimal("0.01")


# --- Set-up -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--recreate", action="store_true", help="drop and recreate the benchmark's own database first (fresh tables)"
    )
    parser.add_argument("--members", type=int, default=100_000, help="members with an account (default 100000)")
    parser.add_argument(
        "--connections", type=int, default=8, help="closed-loop connections and pgbench clients (default 8)"
    )
    parser.add_argument("--duration", type=float, default=30, help="seconds of each measured phase (default 30)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of untimed load first (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2: one per core here)")
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"), help="(default gthread)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (default 2)")
    parser.add_argument("--open-threads", type=int, default=32, help="sender threads of the open loop (default 32)")
    parser.add_argument("--half", type=float, default=0.5, help="open-loop rate as a share of the max (default 0.5)")
    parser.add_argument("--profile", type=int, default=300, help="in-process purchases profiled (default 300)")
    parser.add_argument("--no-idempotency-key", action="store_true", help="send purchases without Idempotency-Key")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--api-only", action="store_true", help="only the API's closed and open loops (quick comparisons; no targets)"
    )
    parser.add_argument(
        "--profile-only", action="store_true", help="only the in-process profile (quick comparisons; no targets)"
    )
    args = parser.parse_args(argv)
    if min(args.members, args.connections, args.workers, args.threads, args.open_threads, args.profile) < 1:
        parser.error("--members, --connections, --workers, --threads, --open-threads and --profile must be >= 1")
    if args.duration <= 0 or args.warmup < 0 or not 0 < args.half <= 1:
        parser.error("need --duration > 0, --warmup >= 0 and 0 < --half <= 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


THROTTLE = "1000000000/s"  # DRF's throttle still runs (a cache read and write), it just never refuses


def setup_django(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["LOYALTY_ALLOW_INSECURE_KEY"] = "1"
    os.environ["DATABASE_URL"] = url
    os.environ["THROTTLE_POS"] = THROTTLE
    os.environ["DEBUG"] = "0"  # as in production: no query log kept in memory
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_program() -> Any:
    from members.models import Program
    from members.services.programs import program_create

    program = Program.objects.filter(slug=PROGRAM_SLUG).first()
    if program is None:
        program = program_create(
            slug=PROGRAM_SLUG,
            name="Accrual benchmark",
            currency=CURRENCY,
            timezone=TIME_ZONE,
            pending_days=PENDING_DAYS,
            expiry_policy="days",
            expiry_period=EXPIRY_DAYS,
        )
    return program


TIERS = (("Silver", 1, "1500", "1.10"), ("Gold", 2, "5000", "1.25"), ("Platinum", 3, "15000", "1.50"))


def ensure_tiers(program: Any) -> dict[str, Any]:
    from loyalty.models import Tier
    from loyalty.services.tiers import tier_save

    tiers = {tier.name: tier for tier in Tier.objects.filter(program=program)}
    for name, rank, threshold, multiplier in TIERS:
        if name not in tiers:
            tiers[name] = tier_save(
                tier=Tier(
                    program=program,
                    name=name,
                    rank=rank,
                    threshold=Decimal(threshold),
                    earn_multiplier=Decimal(multiplier),
                )
            )
    return tiers


def rule_specs(now: datetime) -> list[dict[str, Any]]:
    """The program's 20 purchase rules: fields of `EarningRule`, plus `tiers` (names) for one of them."""
    d = Decimal
    return [
        {"name": "Base rate", "kind": "base_rate", "priority": 10, "rate": d("0.1"),
         "excluded_categories": "giftcards, tobacco", "excluded_skus": "DEPOSIT-BOTTLE"},
        {"name": "Books double points", "kind": "multiplier", "priority": 20, "multiplier": d(2),
         "categories": "books"},
        {"name": "Electronics x1.5", "kind": "multiplier", "priority": 20, "multiplier": d("1.5"),
         "categories": "electronics", "cap_per_purchase": 500},
        {"name": "E-shop x1.5", "kind": "multiplier", "priority": 30, "multiplier": d("1.5"), "channels": "eshop"},
        {"name": "App orders x2", "kind": "multiplier", "priority": 30, "multiplier": d(2), "channels": "app",
         "cap_per_member_day": 300},
        {"name": "Weekend groceries x2", "kind": "multiplier", "priority": 40, "multiplier": d(2),
         "categories": "groceries, produce", "weekdays": "6,7"},
        {"name": "Beauty Tuesday x3", "kind": "multiplier", "priority": 40, "multiplier": d(3),
         "categories": "beauty", "weekdays": "2", "cap_per_member_day": 200},
        {"name": "Fresh produce x1.2", "kind": "multiplier", "priority": 40, "multiplier": d("1.2"),
         "categories": "produce"},
        {"name": "Prague flagships x1.5", "kind": "multiplier", "priority": 50, "multiplier": d("1.5"),
         "stores": "PRAGUE-01, PRAGUE-02"},
        {"name": "Gold toys x2", "kind": "multiplier", "priority": 50, "multiplier": d(2), "categories": "toys",
         "tiers": ["Gold", "Platinum"]},
        {"name": "Pharmacy x1.5", "kind": "multiplier", "priority": 50, "multiplier": d("1.5"),
         "categories": "pharmacy", "cap_per_member_month": 500},
        {"name": "Season: kids clothing x2", "kind": "multiplier", "priority": 60, "multiplier": d(2),
         "categories": "kids-clothing", "active_from": now - timedelta(days=1),
         "active_until": now + timedelta(days=3650)},
        {"name": "Basket over 1000 CZK", "kind": "bonus", "priority": 70, "points": 50, "min_basket": d(1000),
         "cap_per_member_day": 50},
        {"name": "Basket over 3000 CZK", "kind": "bonus", "priority": 70, "points": 200, "min_basket": d(3000),
         "cap_per_member_day": 200},
        {"name": "Welcome: first purchase", "kind": "bonus", "priority": 80, "points": 100, "first_purchase": True},
        {"name": "10th purchase", "kind": "bonus", "priority": 80, "points": 250, "nth_purchase": 10},
        {"name": "Coffee beans bonus", "kind": "bonus", "priority": 80, "points": 30,
         "skus": "COF-0001, COF-0002, COF-0003, COF-0004, COF-0005", "cap_per_member_day": 30},
        {"name": "Wine and cheese", "kind": "bonus", "priority": 80, "points": 40, "categories": "wine",
         "min_basket": d(500)},
        {"name": "Brno early week", "kind": "bonus", "priority": 90, "points": 25, "weekdays": "1,2,3",
         "stores": "BRNO-01, BRNO-02, BRNO-03, BRNO-04, BRNO-05"},
        {"name": "Launch: headphones", "kind": "bonus", "priority": 90, "points": 80, "skus": "ELE-0007",
         "budget_total": 1_000_000_000},
    ]  # fmt: skip


def ensure_rules(program: Any, tiers: dict[str, Any]) -> list[Any]:
    from loyalty.models import EarningRule
    from loyalty.services.rules import earning_rule_save

    if not EarningRule.objects.filter(program=program).exists():
        log("creating 20 earning rules")
        for spec in rule_specs(datetime.now(UTC)):
            tier_names = spec.pop("tiers", None)
            rule_tiers = [tiers[name] for name in tier_names] if tier_names else None
            earning_rule_save(rule=EarningRule(program=program, **spec), tiers=rule_tiers)
    return list(EarningRule.objects.filter(program=program, is_active=True))


def ensure_members(program: Any, tiers: dict[str, Any], count: int) -> list[tuple[int, str]]:
    """(id, card) of `count` members of the program, each with an account (`ledger.create_members`); the
    accounts created here get a tier for one member in five (15 % Silver, 4 % Gold, 1 % Platinum)."""
    from django.db import connection

    from members.models import Member

    created = create_members(program, count, prefix="acc")
    if created:
        with connection.cursor() as cursor:
            for name, low, high in (("Silver", 0, 15), ("Gold", 15, 19), ("Platinum", 19, 20)):
                cursor.execute(
                    "UPDATE loyalty_account SET tier_id = %s, tier_achieved_at = now(), "
                    "tier_review_at = now() + interval '365 days' "
                    "WHERE member_id = ANY(%s) AND member_id %% 100 >= %s AND member_id %% 100 < %s",
                    [tiers[name].pk, created, low, high],
                )
            cursor.execute("ANALYZE members_member")
            cursor.execute("ANALYZE loyalty_account")
    rows = Member.objects.filter(program=program).order_by("pk").values_list("pk", "card")[:count]
    return list(rows)


TOUCHED_TABLES = (
    "members_member", "members_apikey", "members_idempotencyrecord", "loyalty_account", "loyalty_entry",
    "loyalty_lot", "loyalty_purchase", "loyalty_purchaseline", "loyalty_award", "loyalty_earningrule",
)  # fmt: skip


def analyze(url: str) -> None:
    """Fresh planner statistics for the tables a purchase reads and writes (the server may run without
    autovacuum, and earlier runs added rows)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TOUCHED_TABLES:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def checkpoint(url: str) -> None:
    """Flushes dirty buffers before a phase, so no phase pays for the writes of the one before."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:  # needs superuser or pg_checkpoint
        log(f"no CHECKPOINT before the phase: {exc}")


def new_api_key(program: Any) -> str:
    from members.services.api_keys import api_key_create

    return api_key_create(program=program, name=f"accrual bench {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")[1]


# --- Purchases ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    name: str
    weight: int
    low: int  # unit price range, CZK
    high: int
    skus: int
    by_weight: bool = False  # sold by the kilogram


CATEGORIES = (
    Category("groceries", 30, 15, 250, 800),
    Category("produce", 12, 20, 120, 150, by_weight=True),
    Category("coffee", 5, 150, 450, 60),
    Category("wine", 5, 120, 1500, 300),
    Category("books", 8, 150, 900, 2000),
    Category("beauty", 8, 80, 900, 600),
    Category("pharmacy", 6, 50, 600, 400),
    Category("toys", 5, 100, 2000, 500),
    Category("kids-clothing", 5, 200, 2500, 700),
    Category("electronics", 4, 300, 15000, 400),
    Category("tobacco", 4, 120, 160, 40),
    Category("giftcards", 2, 500, 2000, 3),
)
CATEGORY_WEIGHTS = [c.weight for c in CATEGORIES]
CITIES = (("PRAGUE", 12), ("BRNO", 5), ("OSTRAVA", 4), ("PLZEN", 3))
STORES = [f"{city}-{i:02d}" for city, stores in CITIES for i in range(1, stores + 1)]
CHANNELS = (("pos", 70), ("eshop", 20), ("app", 10))
LINE_COUNTS = ((1, 30), (2, 25), (3, 20), (4, 15), (5, 10))


class PurchaseFactory:
    """Request bodies of realistic purchases; one factory per sending thread (own counter and random)."""

    def __init__(self, members: Sequence[tuple[int, str]], tag: str, seed: int, idempotency: bool) -> None:
        self.members = members
        self.tag = tag
        self.rng = random.Random(seed)
        self.count = 0
        self.idempotency = idempotency
        self.tz = ZoneInfo(TIME_ZONE)

    def _line(self) -> dict[str, str]:
        rng = self.rng
        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        sku = f"{category.name[:3].upper()}-{rng.randint(1, category.skus):04d}"
        if category.name == "giftcards":
            price = Decimal(rng.choice((500, 1000, 2000)))
        else:
            price = Decimal(rng.randint(category.low * 10, category.high * 10)) / 10 - Decimal("0.10")
        if category.by_weight:
            quantity = Decimal(rng.randint(200, 2500)) / 1000
        else:
            quantity = Decimal(rng.choices((1, 2, 3, 4), (70, 20, 7, 3))[0])
        amount = (quantity * price).quantize(CENT)
        return {
            "sku": sku,
            "category": category.name,
            "quantity": str(quantity),
            "unit_price": str(price),
            "amount": str(amount),
        }

    def body(self) -> dict[str, Any]:
        rng = self.rng
        self.count += 1
        member_id, card = rng.choice(self.members)
        ref = {"id": member_id} if rng.random() < 0.5 else {"card": "-".join(card[i : i + 4] for i in (0, 4, 8))}
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        store = {"pos": lambda: rng.choice(STORES), "eshop": lambda: "WEB-CZ", "app": lambda: "APP"}[channel]()
        n_lines = rng.choices([n for n, _ in LINE_COUNTS], [w for _, w in LINE_COUNTS])[0]
        lines = [self._line() for _ in range(n_lines)]
        occurred = datetime.now(self.tz) - timedelta(seconds=rng.uniform(0, 90))
        return {
            "external_id": f"{self.tag}-{self.count:07d}",
            "member": ref,
            "store": store,
            "channel": channel,
            "occurred_at": occurred.isoformat(timespec="seconds"),
            "currency": CURRENCY,
            "total": str(sum((Decimal(line["amount"]) for line in lines), Decimal(0))),
            "lines": lines,
        }

    def request(self, api_key: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(self.body(), separators=(",", ":")).encode()
        headers = {"Authorization": f"Api-Key {api_key}", "Content-Type": "application/json"}
        if self.idempotency:
            headers["Idempotency-Key"] = uuid.uuid4().hex  # unique across runs, unlike the seeded bodies
        return body, headers


# --- gunicorn -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log_path: Path
    description: str


@contextmanager
def gunicorn(args: argparse.Namespace, logs: Path) -> Iterator[Server]:
    """gunicorn serving the project on 127.0.0.1, as production would run it (DEBUG unset)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "BENCH_DATABASE_URL")}
    env.update(
        DATABASE_URL=args.database_url,
        LOYALTY_ALLOW_INSECURE_KEY="1",
        THROTTLE_POS=THROTTLE,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(args.workers), "--worker-class", args.worker_class, "--keep-alive", "10"]
    command += ["--threads", str(args.threads)] if args.worker_class == "gthread" else []
    command += ["--no-control-socket", "--log-level", "warning"]
    log_path = logs / "gunicorn.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    threads = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    server = Server(process, port, log_path, f"gunicorn, {args.workers} {args.worker_class} workers{threads}")
    try:
        wait_listening(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_listening(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{server.log_path.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start listening within 30 s")


# --- Load generator -----------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    requests: int
    ok: int
    seconds: float
    rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    statuses: dict[str, int]
    target_rate: float | None = None
    late_starts: int = 0  # open loop: sends that left > 1 ms after their scheduled time (no free sender)
    cpu: dict[str, float] = field(default_factory=dict)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def phase_of(name: str, latencies: list[float], statuses: Counter, seconds: float, **extra: Any) -> Phase:
    ordered = sorted(latencies) or [0.0]
    ms = [round(v * 1000, 2) for v in (*(percentile(ordered, f) for f in (0.5, 0.95, 0.99, 1.0)), fmean(ordered))]
    ok = sum(n for status, n in statuses.items() if str(status).startswith("2"))
    return Phase(
        name, len(latencies), ok, round(seconds, 2), round(len(latencies) / seconds, 1), *ms,
        statuses={str(k): v for k, v in sorted(statuses.items(), key=str)}, **extra,
    )  # fmt: skip


class Sender:
    """One keep-alive HTTP/1.1 connection (re-opened after the server closes it), one thread."""

    def __init__(self, port: int, factory: PurchaseFactory, api_key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.factory = factory
        self.api_key = api_key
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.late = 0  # open loop: sends that left over 1 ms after their scheduled time

    def prepare(self) -> tuple[bytes, dict[str, str]]:
        return self.factory.request(self.api_key)

    def send(self, request: tuple[bytes, dict[str, str]], since: float) -> None:
        """Posts one purchase; its latency counts from `since`."""
        try:
            self.conn.request("POST", PATH, request[0], request[1])
            response = self.conn.getresponse()
            data = response.read()
            status: int | str = response.status
            if status >= 300 and len(self.errors) < 3:
                self.errors.append(f"{status}: {data[:300]!r}")
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            status = type(exc).__name__
            if len(self.errors) < 3:
                self.errors.append(repr(exc))
        self.latencies.append(time.perf_counter() - since)
        self.statuses[status] += 1


class LoadGenerator:
    def __init__(self, port: int, api_key: str, members: Sequence[tuple[int, str]], args: argparse.Namespace):
        self.port = port
        self.api_key = api_key
        self.members = members
        self.idempotency = not args.no_idempotency_key
        self.rng = random.Random(args.seed)
        self.run_tag = f"A{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(2)}"
        self.phases = itertools.count(1)
        self.errors: list[str] = []
        self.sent = 0

    def _senders(self, n: int) -> list[Sender]:
        phase = next(self.phases)
        return [
            Sender(
                self.port,
                PurchaseFactory(self.members, f"{self.run_tag}-{phase}-{i:02d}", self.rng.getrandbits(64),
                                self.idempotency),
                self.api_key,
            )
            for i in range(n)
        ]  # fmt: skip

    def _run(self, senders: list[Sender], target: Callable[[Sender], None]) -> float:
        threads = [threading.Thread(target=target, args=(s,), daemon=True) for s in senders]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for sender in senders:
            sender.conn.close()
            self.errors += sender.errors[: max(0, 5 - len(self.errors))]
        self.sent += sum(len(s.latencies) for s in senders)
        return time.perf_counter() - start

    @staticmethod
    def _merge(senders: list[Sender]) -> tuple[list[float], Counter]:
        latencies = [v for s in senders for v in s.latencies]
        return latencies, sum((s.statuses for s in senders), Counter())

    def one(self) -> Phase:
        sender = self._senders(1)[0]
        began = time.perf_counter()
        sender.send(sender.prepare(), began)
        sender.conn.close()
        self.errors += sender.errors
        self.sent += 1
        return phase_of("first", *self._merge([sender]), time.perf_counter() - began)

    def closed(self, name: str, connections: int, seconds: float) -> Phase:
        """Each connection sends its next purchase as soon as the previous answer arrives."""
        deadline = time.perf_counter() + seconds

        def loop(sender: Sender) -> None:
            while True:
                request = sender.prepare()
                began = time.perf_counter()
                if began >= deadline:
                    return
                sender.send(request, began)

        senders = self._senders(connections)
        elapsed = self._run(senders, loop)
        return phase_of(name, *self._merge(senders), elapsed)

    def open(self, name: str, rate: float, seconds: float, threads: int) -> Phase:
        """Purchases arrive at `rate` per second (Poisson), whatever the answers; each latency counts from
        the scheduled arrival, so time spent waiting for a free sender or connection is included."""
        rng = random.Random(self.rng.getrandbits(64))
        arrivals, t = [], rng.expovariate(rate)
        while t < seconds:
            arrivals.append(t)
            t += rng.expovariate(rate)
        tickets = itertools.count()
        start = time.perf_counter() + 0.2

        def loop(sender: Sender) -> None:
            while (i := next(tickets)) < len(arrivals):
                request = sender.prepare()
                scheduled = start + arrivals[i]
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.001:
                    sender.late += 1
                sender.send(request, scheduled)

        senders = self._senders(threads)
        self._run(senders, loop)
        late = sum(s.late for s in senders)
        return phase_of(name, *self._merge(senders), seconds, target_rate=round(rate, 1), late_starts=late)


# --- CPU accounting -----------------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks, reaped children's CPU ticks) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rindex(")") + 2 :].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def _tree_ticks(root: int) -> int:
    """CPU ticks of `root` (with the children it reaped) and of its live children: gunicorn and its workers."""
    total = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (info := _ticks(int(entry.name))) is not None:
            if int(entry.name) == root:
                total += info[1] + info[2]
            elif info[0] == root:
                total += info[1]
    return total


def cpu_snapshot(server_pid: int | None) -> dict[str, float]:
    """Cumulative CPU seconds: the whole machine (busy), gunicorn (master and workers), this process
    (the load generator) and its reaped children (pgbench)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    me, children = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": (sum(fields) - fields[3] - fields[4]) / TICK,
        "gunicorn": _tree_ticks(server_pid) / TICK if server_pid else 0.0,
        "client": me.user + me.system,
        "pgbench": children.ru_utime + children.ru_stime,
        "wall": time.monotonic(),
    }


class PostgresCpu:
    """CPU of the PostgreSQL processes working for the benchmark: the backends of its database and the
    server's background processes (WAL writer, checkpointer, ...), sampled every 0.2 s from
    pg_stat_activity and /proc. Backends of other databases are left out (they count as 'other');
    a backend's last moments before it exits may be missed."""

    QUERY = (
        "SELECT pid, backend_type = 'client backend' FROM pg_stat_activity "
        "WHERE (datname = current_database() OR backend_type <> 'client backend') AND pid <> pg_backend_pid()"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.backends: set[int] = set()
        self.done = threading.Event()

    def _sample(self, conn: psycopg.Connection, baseline: bool) -> None:
        for pid, backend in conn.execute(self.QUERY).fetchall():
            if backend:
                self.backends.add(pid)
            if (info := _ticks(pid)) is not None:
                self.first.setdefault(pid, info[1] if baseline else 0)
                self.last[pid] = info[1]

    def _loop(self, conn: psycopg.Connection) -> None:
        while not self.done.wait(0.2):
            self._sample(conn, False)

    @contextmanager
    def running(self) -> Iterator["PostgresCpu"]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            self._sample(conn, True)
            thread = threading.Thread(target=self._loop, args=(conn,), daemon=True)
            thread.start()
            try:
                yield self
            finally:
                self.done.set()
                thread.join()
                self._sample(conn, False)

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last) / TICK

    @property
    def backend_seconds(self) -> float:
        """The database's backends only, without the server's background processes (which other
        databases' work keeps busy too)."""
        return sum(self.last[pid] - self.first[pid] for pid in self.last if pid in self.backends) / TICK


def cpu_delta(before: dict[str, float], after: dict[str, float], postgres: float, client: str) -> dict[str, float]:
    """Cores used on average over the interval, per group; `client` names the load's source."""
    wall = after["wall"] - before["wall"]
    used = {name: (after[name] - before[name]) / wall for name in ("busy", "gunicorn", client)}
    used["postgresql"] = postgres / wall
    other = used["busy"] - used["gunicorn"] - used["postgresql"] - used[client]
    return {**{k: round(v, 2) for k, v in used.items()}, "other": round(max(other, 0.0), 2)}


def measured(phase: Callable[[], Phase], url: str, server_pid: int | None, client: str = "client") -> Phase:
    with PostgresCpu(url).running() as postgres:
        before = cpu_snapshot(server_pid)
        result = phase()
        after = cpu_snapshot(server_pid)
    result.cpu = cpu_delta(before, after, postgres.seconds, client)
    return result


# --- pgbench ------------------------------------------------------------------------------------------------


def pgbench_path() -> str:
    found = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    if not found:
        raise SystemExit("pgbench not found: apt-get install -y postgresql-client (or postgresql-contrib)")
    return str(found)


def member_range(members: Sequence[tuple[int, str]]) -> tuple[int, int]:
    ids = [pk for pk, _ in members]
    lo, hi = min(ids), max(ids)
    if hi - lo + 1 != len(ids):
        raise SystemExit(f"member ids of {PROGRAM_SLUG} are not contiguous: drop the database and run again")
    return lo, hi


def run_pgbench(url: str, program: Any, members: Sequence[tuple[int, str]], args: argparse.Namespace,
                logs: Path) -> Phase:  # fmt: skip
    params = psycopg.conninfo.conninfo_to_dict(url)
    lo, hi = member_range(members)
    variables = {
        "program": program.pk, "currency": program.currency, "lo": lo, "hi": hi, "n": 0,
        "run": f"{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(2)}",
        "pending_days": program.pending_days, "expiry_days": EXPIRY_DAYS,
    }  # fmt: skip
    command = [pgbench_path(), "-n", "-M", "prepared", "-c", str(args.connections)]
    command += ["-j", str(min(args.connections, os.cpu_count() or 1)), "-T", str(round(args.duration))]
    command += ["-f", str(PGBENCH_SCRIPT), "--log", f"--log-prefix={logs / 'pgbench'}"]
    command += [f"--host={params.get('host', '127.0.0.1')}", f"--port={params.get('port', '5432')}"]
    command += [f"--username={params.get('user', 'postgres')}"]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(params["dbname"])
    env = {**os.environ, **({"PGPASSWORD": params["password"]} if params.get("password") else {})}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    return pgbench_phase(done.stdout, logs)


def pgbench_phase(output: str, logs: Path) -> Phase:
    """The phase from pgbench's per-transaction logs (latency in microseconds in the third column)."""
    latencies, statuses = [], Counter()
    for path in logs.glob("pgbench.*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]) / 1e6)
                statuses["ok"] += 1
            elif parts:
                statuses[parts[2] if len(parts) > 2 else "?"] += 1
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    phase = phase_of("pgbench", latencies, statuses, float(re.search(r"duration: (\d+) s", output).group(1)))
    phase.rate = round(float(tps.group(1)), 1) if tps else phase.rate
    phase.ok = statuses["ok"]
    return phase


# --- Where the time goes ------------------------------------------------------------------------------------


def wsgi_post(app: Any, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request through the WSGI application, exactly as gunicorn calls it."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": PATH, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": headers["Content-Type"], "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip
    for name, value in headers.items():
        if name != "Content-Type":
            environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
    status: list[str] = []
    result = app(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        data = b"".join(result)
    finally:
        result.close()
    return int(status[0].split()[0]), data


# Inclusive time of these calls, as a share of the request (cProfile; they nest, so shares overlap).
SPANS = (
    ("whole request (WSGIHandler.__call__)", "django/core/handlers/wsgi.py", "__call__"),
    ("  API key authentication (cached)", "members/services/api_keys.py", "api_key_authenticate"),
    ("  throttle (cache read and write)", "rest_framework/throttling.py", "allow_request"),
    ("  Idempotency-Key record (INSERT, first write)", "members/services/idempotency.py", "_idempotency_insert"),
    ("  PosPurchaseInput validation (DRF)", "rest_framework/serializers.py", "is_valid"),
    ("  purchase_record (atomic)", "loyalty/services/purchases.py", "purchase_record"),
    ("    lock_buyer_account (member look-up and lock)", "loyalty/services/accounts.py", "lock_buyer_account"),
    ("    member_get (fallback: referred or no account)", "members/selectors.py", "member_get"),
    ("    member_context (cap usage query)", "loyalty/services/awards.py", "member_context"),
    ("    evaluate_purchase (20 rules, in memory)", "loyalty/rules.py", "evaluate_purchase"),
    ("    awards_post (entry, lot, awards, account)", "loyalty/services/awards.py", "awards_post"),
    ("    tier_metric_value (window aggregate)", "loyalty/services/tiers.py", "tier_metric_value"),
    ("    rows inserted (entry, lot, outbox, purchase)", "config/rows.py", "instance_insert"),
    ("    rows inserted, executemany (awards, lines)", "config/rows.py", "rows_insert"),
    ("    QuerySet.create (ORM inserts left)", "django/db/models/query.py", "create"),
    ("  Idempotency-Key answer stored (UPDATE)", "members/services/idempotency.py", "_idempotency_store"),
    ("  response rendering (JSONRenderer)", "rest_framework/renderers.py", "render"),
    ("psycopg: waiting for PostgreSQL", "psycopg/connection.py", "wait"),
    ("Django ORM: SQL compilation (as_sql, approx.)", "django/db/models/sql/compiler.py", "as_sql"),
    ("Django ORM: model instances (Model.__init__)", "django/db/models/base.py", "__init__"),
    ("atomic blocks' exits (commits, savepoint releases)", "django/db/transaction.py", "__exit__"),
)


@dataclass
class Profile:
    purchases: int
    queries_per_purchase: float
    query_kinds: dict[str, float]
    one_purchase_sql: list[str]
    ms_per_purchase: float
    db_ms_per_purchase: float
    python_ms_per_purchase: float
    cpu_ms_per_purchase: float
    postgres_cpu_ms_per_purchase: float  # this database's backends and the server's background processes
    backend_cpu_ms_per_purchase: float  # the backends only
    profiled_ms_per_purchase: float
    calls_per_purchase: int  # Python function calls (cProfile): the Python work, without the timing noise
    spans: list[tuple[str, float, int]]  # label, ms per purchase, calls per purchase
    layers: list[tuple[str, float]]  # label, own ms per purchase
    top: list[tuple[str, float, float, int]]  # function, self ms, inclusive ms (per purchase), calls
    awards_per_purchase: float
    points_per_purchase: float
    round_trips_per_purchase: float
    health_checks_per_purchase: float
    transactions_per_purchase: float
    write_transactions_per_purchase: float


def _post_all(app: Any, requests: Sequence[tuple[bytes, dict[str, str]]]) -> list[dict[str, Any]]:
    answers = []
    for body, headers in requests:
        status, data = wsgi_post(app, body, headers)
        if status != 201:
            raise SystemExit(f"in-process purchase answered {status}: {data[:500]!r}")
        answers.append(json.loads(data))
    return answers


def _executed(query: str) -> tuple[str, int]:
    """The statement and how many rows of parameters it ran with: Django logs an executemany as
    `N times: <statement>` (psycopg sends the N in one round trip)."""
    if match := re.match(r"(\d+) times: ", query):
        return query[match.end() :], int(match.group(1))
    return query, 1


def statement_summary(query: str) -> str:
    """`SELECT members_member JOIN ...`, `INSERT loyalty_lot`, with FOR UPDATE and aggregates noted."""
    query, times = _executed(query)
    verb = query.split(None, 1)[0].upper()
    tables = re.findall(r'(?:FROM|JOIN|INTO|UPDATE) "(\w+)"', query)
    notes = [n for n, pattern in (("FOR UPDATE", r"FOR UPDATE"), ("SUM", r"\bSUM\(")) if re.search(pattern, query)]
    rows = query.count("), (") + 1 if verb == "INSERT" and " VALUES " in query else None
    if rows and rows > 1:
        notes.append(f"{rows} rows")
    if times > 1:
        notes.append(f"{times} rows, executemany")
    return " ".join([verb, ", ".join(dict.fromkeys(tables)), *(f"[{n}]" for n in notes)]).strip()


def typical_purchase(purchases: Sequence[Sequence[str]]) -> Sequence[str]:
    """The statements of one purchase with the most common statement count."""
    usual = Counter(len(p) for p in purchases).most_common(1)[0][0]
    return next(p for p in purchases if len(p) == usual)


def _query_kinds(queries: Sequence[str], purchases: int) -> dict[str, float]:
    kinds = Counter(_executed(q)[0].split(None, 1)[0].upper() for q in queries)
    return {kind: round(n / purchases, 2) for kind, n in kinds.most_common()}


def _db_wait(app: Any, requests: Sequence[tuple[bytes, dict[str, str]]]) -> tuple[float, float, float]:
    """Seconds spent in psycopg's blocking calls (send, wait for the server, receive, commits included),
    seconds in all, and CPU seconds of this process, over `requests`."""
    original, inside = psycopg.Connection.wait, [0.0]

    def wait(self: psycopg.Connection, *a: Any, **kw: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            inside[0] += time.perf_counter() - began

    psycopg.Connection.wait = wait  # type: ignore[method-assign]
    try:
        began, cpu = time.perf_counter(), time.process_time()
        _post_all(app, requests)
        return inside[0], time.perf_counter() - began, time.process_time() - cpu
    finally:
        psycopg.Connection.wait = original  # type: ignore[method-assign]


def _spans(stats: pstats.Stats, purchases: int) -> list[tuple[str, float, int]]:
    rows = []
    for label, path, name in SPANS:
        hits = [(v[1], v[3]) for (file, _, func), v in stats.stats.items() if func == name and file.endswith(path)]
        inclusive, calls = sum(ct for _, ct in hits), sum(n for n, _ in hits)
        rows.append((label, round(inclusive / purchases * 1000, 3), round(calls / purchases)))
    return rows


LAYERS = (
    ("psycopg (driver; includes waiting for PostgreSQL)", r"/site-packages/psycopg"),
    ("Django ORM and database backend (django/db)", r"/site-packages/django/db/"),
    ("Django request handling, middleware, utils", r"/site-packages/django/"),
    ("Django REST framework", r"/site-packages/rest_framework/"),
    ("project code (loyalty, members, config)", re.escape(str(ROOT)) + r"/(loyalty|members|config|rewards)/"),
    ("other libraries", r"/site-packages/"),
    ("standard library and built-ins", r""),
)


def _layers(stats: pstats.Stats, purchases: int) -> list[tuple[str, float]]:
    """Own time summed by where the code lives (built-ins count as the standard library)."""
    totals: Counter = Counter()
    for (file, _, _), (_, _, own, _, _) in stats.stats.items():
        label = next(label for label, pattern in LAYERS if re.search(pattern, file))
        totals[label] += own
    return [(label, round(totals[label] / purchases * 1000, 3)) for label, _ in LAYERS]


def _top(stats: pstats.Stats, purchases: int, n: int = 60) -> list[tuple[str, float, float, int]]:
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:n]
    out = []
    for (file, line, func), (_, calls, tt, ct, _) in rows:
        where = re.sub(r"^.*/(site-packages|lib/python3\.\d+|main)/", "", file)
        label = f"{where}:{line}({func})" if line else func
        out.append((label, round(tt / purchases * 1000, 3), round(ct / purchases * 1000, 3), round(calls / purchases)))
    return out


WRITES = frozenset({"INSERT", "UPDATE", "DELETE"})


def count_transactions(statements: Sequence[str]) -> tuple[int, int]:
    """Transactions, and those that write, in statements as CaptureQueriesContext logs them: Django logs
    the BEGIN and the COMMIT (or ROLLBACK) of each atomic block, and a statement outside one is its own
    transaction (autocommit). Transactions that write are the ones PostgreSQL must flush to the WAL on
    commit."""
    total = writes = 0
    inside = wrote = False
    for statement in statements:
        verb = _executed(statement)[0].lstrip().split(None, 1)[0].upper()
        if verb == "BEGIN":
            inside, wrote = True, False
        elif verb in ("COMMIT", "ROLLBACK"):
            total += 1
            writes += wrote and verb == "COMMIT"
            inside = False
        elif inside:
            wrote = wrote or verb in WRITES
        else:
            total += 1
            writes += verb in WRITES
    return total, writes


@contextmanager
def round_trips() -> Iterator[Counter]:
    """Client-server round trips on Django's connection, from libpq's protocol trace: the client waits for
    the server after each simple-protocol Query, each Sync and each Flush (a pipeline read before its end;
    psycopg's Flush right after a Sync waits for nothing more). Also counts Django's `SELECT 1` health
    checks (CONN_HEALTH_CHECKS, `is_usable()`), which CaptureQueriesContext does not see."""
    from django.db import connection

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    counts: Counter = Counter()
    is_usable = connection.is_usable

    def counted_is_usable() -> bool:
        counts["SELECT 1"] += 1
        return is_usable()

    connection.is_usable = counted_is_usable  # type: ignore[method-assign]
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counts
        finally:
            pgconn.untrace()
            del connection.is_usable
        trace.seek(0)
        messages = [
            line.rstrip("\n").split("\t")[2].split(" ")[0]
            for line in trace
            if line.startswith("F\t") and line.count("\t") >= 2
        ]
        counts["all"] += sum(
            kind in ("Query", "Sync") or kind == "Flush" and (n == 0 or messages[n - 1] != "Sync")
            for n, kind in enumerate(messages)
        )


def profile_in_process(api_key: str, members: Sequence[tuple[int, str]], args: argparse.Namespace) -> Profile:
    """Purchases through config.wsgi in this process, one at a time (no contention): the SQL each runs,
    the time spent waiting for PostgreSQL, and a cProfile of the Python side."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from config.wsgi import application

    n = args.profile
    factory = PurchaseFactory(members, f"P{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(2)}", args.seed,
                              not args.no_idempotency_key)  # fmt: skip
    requests = [factory.request(api_key) for _ in range(30 + 4 * n)]
    warm, counted, timed_, profiled = requests[:30], requests[30 : 30 + n], requests[30 + n : 30 + 3 * n], requests[-n:]
    # One connection for the whole profile: CONN_MAX_AGE would replace it after a minute, and the round-trip
    # trace follows one connection only.
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = None
    _post_all(application, warm)
    purchases, answers = [], []
    with round_trips() as trips:
        for request in counted:
            with CaptureQueriesContext(connection) as captured:
                answers += _post_all(application, [request])
            purchases.append([q["sql"] for q in captured.captured_queries])
    queries = [q for purchase in purchases for q in purchase]
    transactions, writes = count_transactions(queries)
    with PostgresCpu(args.database_url).running() as postgres:
        db_seconds, seconds, cpu_seconds = _db_wait(application, timed_)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(_post_all, application, profiled)
    profiled_seconds = time.perf_counter() - began
    stats = pstats.Stats(profiler)
    per = len(queries) / n
    return Profile(
        purchases=n,
        queries_per_purchase=round(per, 2),
        query_kinds=_query_kinds(queries, n),
        one_purchase_sql=[statement_summary(q) for q in typical_purchase(purchases)],
        ms_per_purchase=round(seconds / len(timed_) * 1000, 2),
        db_ms_per_purchase=round(db_seconds / len(timed_) * 1000, 2),
        python_ms_per_purchase=round((seconds - db_seconds) / len(timed_) * 1000, 2),
        cpu_ms_per_purchase=round(cpu_seconds / len(timed_) * 1000, 2),
        postgres_cpu_ms_per_purchase=round(postgres.seconds / len(timed_) * 1000, 2),
        backend_cpu_ms_per_purchase=round(postgres.backend_seconds / len(timed_) * 1000, 2),
        profiled_ms_per_purchase=round(profiled_seconds / n * 1000, 2),
        calls_per_purchase=round(stats.total_calls / n),  # type: ignore[attr-defined]
        spans=_spans(stats, n),
        layers=_layers(stats, n),
        top=_top(stats, n),
        awards_per_purchase=round(fmean(len(a["awards"]) for a in answers), 2),
        points_per_purchase=round(fmean(a["points_awarded"] for a in answers), 1),
        round_trips_per_purchase=round(trips["all"] / n, 2),
        health_checks_per_purchase=round(trips["SELECT 1"] / n, 2),
        transactions_per_purchase=round(transactions / n, 2),
        write_transactions_per_purchase=round(writes / n, 2),
    )


# --- Report -------------------------------------------------------------------------------------------------


def machine_facts(url: str) -> dict[str, Any]:
    import django

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    with psycopg.connect(url, autocommit=True) as conn:
        server = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers", "autovacuum")
        }
    gunicorn_version = (
        subprocess.run([sys.executable, "-m", "gunicorn", "--version"], capture_output=True, text=True, check=False)
        .stdout.split()[-1]
        .rstrip(")")
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn_version,
        "psycopg": psycopg.__version__,
        **{f"pg_{k}": v.split()[0] if k == "server_version" else v for k, v in server.items()},
    }


def data_facts(program: Any, rules: Sequence[Any], members: int) -> dict[str, Any]:
    from loyalty.models import Account, Purchase

    return {
        "members": members,
        "members_with_tier": Account.objects.filter(program=program, tier__isnull=False).count(),
        "rules": len(rules),
        "capped_rules": sum(1 for r in rules if r.cap_per_member_day or r.cap_per_member_month),
        "budgeted_rules": sum(1 for r in rules if r.budget_total is not None),
        "purchases_before": Purchase.objects.filter(program=program).count(),
    }


def phase_row(label: str, p: Phase) -> str:
    bad = p.requests - p.ok
    return (
        f"{label:<34} {p.requests:>7} {p.rate:>8.1f} {p.p50_ms:>7.1f} {p.p95_ms:>7.1f} {p.p99_ms:>7.1f} "
        f"{p.max_ms:>7.1f} {bad:>6}"
    )


def cpu_row(label: str, p: Phase, client: str) -> str:
    c = p.cpu
    per = 1000 / p.rate if p.rate else 0.0
    return (
        f"{label:<34} {c['busy']:>5.2f} {c.get('gunicorn', 0):>8.2f} {c['postgresql']:>8.2f} {c[client]:>8.2f} "
        f"{c['other']:>6.2f}   {c.get('gunicorn', 0) * per:>6.2f} {c['postgresql'] * per:>6.2f}"
    )


def busy_warning(results: dict[str, Any]) -> list[str]:
    other = max(results[name].cpu.get("other", 0.0) for name in ("closed", "half", "pgbench"))
    if other < 0.2:
        return []
    return [
        f"WARNING: other processes used up to {other:.2f} cores during a phase (column 'other'): the machine was not "
        "quiet, the figures are lower than they should be; run again on an idle machine."
    ]


def targets(results: dict[str, Any]) -> list[str]:
    ratio, half = results["ratio"], results["half"]
    return [
        f"target (issue): API/pgbench >= 0.25: {ratio:.2f} -> {'met' if ratio >= 0.25 else 'NOT met'}",
        f"target (issue): p99 < 50 ms at half the max rate: {half.p99_ms:.1f} ms at {half.rate:.0f}/s -> "
        f"{'met' if half.p99_ms < 50 and half.ok == half.requests else 'NOT met'}",
    ]


def profile_lines(p: Profile) -> list[str]:
    lines = [
        f"Where the time goes (in this process, through config.wsgi, one purchase at a time, {p.purchases} each):",
        f"  {p.ms_per_purchase:.2f} ms per purchase: {p.db_ms_per_purchase:.2f} ms in psycopg (send, wait for "
        f"PostgreSQL, receive), {p.python_ms_per_purchase:.2f} ms of Python; CPU of this process "
        f"{p.cpu_ms_per_purchase:.2f} ms per purchase, of PostgreSQL {p.postgres_cpu_ms_per_purchase:.2f} ms "
        f"({p.backend_cpu_ms_per_purchase:.2f} ms in the backend, the rest in background processes)",
        f"  SQL statements per purchase as CaptureQueriesContext logs them: {p.queries_per_purchase} "
        f"({', '.join(f'{k} {v}' for k, v in p.query_kinds.items())}); plus {p.health_checks_per_purchase} "
        f"'SELECT 1' health checks (CONN_HEALTH_CHECKS); client-server round trips: {p.round_trips_per_purchase}",
        "  "
        f"transactions per purchase: {p.transactions_per_purchase}, of which write (a WAL flush each at commit): "
        f"{p.write_transactions_per_purchase}",
        f"  the answers: {p.points_per_purchase} points and {p.awards_per_purchase} awards per purchase on average",
        "  the statements of a typical purchase (a tier promotion adds INSERT loyalty_tierhistory, UPDATE "
        "loyalty_account):",
        *(f"    {q}" for q in p.one_purchase_sql),
        f"  cProfile ({p.profiled_ms_per_purchase:.2f} ms per purchase under the profiler, {p.calls_per_purchase} "
        "Python function calls), inclusive ms per purchase:",
        *(f"    {label:<52} {ms:>7.3f}  {calls:>3} calls" for label, ms, calls in p.spans),
        "  own time by layer, ms per purchase (under the profiler):",
        *(f"    {label:<52} {ms:>7.3f}  {ms / p.profiled_ms_per_purchase:>4.0%}" for label, ms in p.layers),
        "  top functions by own time (ms per purchase: own, inclusive, calls):",
        *(f"    {own:>6.3f} {incl:>7.3f} {calls:>4}  {label}" for label, own, incl, calls in p.top),
    ]
    return lines


def report(facts: dict[str, Any], setup: dict[str, Any], results: dict[str, Any], audit: str) -> str:
    closed, half, bench, prof = results["closed"], results["half"], results["pgbench"], results["profile"]
    header = f"{'phase':<34} {'reqs':>7} {'per s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} errors"
    cpu_header = (
        f"{'CPU, cores busy (of ' + str(facts['cores']) + ')':<34} {'all':>5} {'gunicorn':>8} {'postgres':>8} "
        f"{'load gen':>8} {'other':>6}   CPU ms per purchase: gunicorn, postgres"
    )
    return "\n".join(
        [
            f"Accrual benchmark: POST {PATH}, {facts['date']}",
            f"machine:  {facts['cpu']}, {facts['cores']} cores, {facts['os']}",
            f"software: Python {facts['python']}, Django {facts['django']}, gunicorn {facts['gunicorn']}, psycopg "
            f"{facts['psycopg']}, PostgreSQL {facts['pg_server_version']} (synchronous_commit="
            f"{facts['pg_synchronous_commit']}, fsync={facts['pg_fsync']}, "
            f"shared_buffers={facts['pg_shared_buffers']}, autovacuum={facts['pg_autovacuum']}); ANALYZE at set-up, "
            "CHECKPOINT before each phase",
            f"data:     {setup['members']:,} members ({setup['members_with_tier']:,} with a tier), {setup['rules']} "
            f"active earning rules ({setup['capped_rules']} with per-member caps, {setup['budgeted_rules']} with a "
            f"budget), {setup['purchases_before']:,} purchases in the program before the run",
            f"server:   {setup['server']}, DEBUG unset, THROTTLE_POS={THROTTLE}, "
            f"Idempotency-Key {'sent' if setup['idempotency'] else 'not sent'}",
            f"load:     Python threads with http.client keep-alive connections, in the benchmark process: "
            f"gunicorn, PostgreSQL and the load generator (or pgbench) share the {facts['cores']} cores",
            "",
            header,
            "-" * len(header),
            phase_row(f"API, closed loop, {setup['connections']} connections", closed),
            phase_row(f"pgbench, {setup['connections']} clients", bench),
            f"{'ratio API/pgbench (per s)':<34} {'':>7} {results['ratio']:>8.2f}",
            phase_row(f"API, open loop at {setup['half']:.0%} of max", half),
            "",
            cpu_header,
            cpu_row("API, closed loop", closed, "client"),
            cpu_row("API, open loop", half, "client"),
            cpu_row("pgbench", bench, "pgbench"),
            "postgres: this database's backends and the server's background processes (WAL writer, checkpointer);",
            "load gen: this process (the load generator) or pgbench; other: everything else on the machine.",
            "",
            f"open loop: {half.target_rate}/s scheduled (Poisson), {half.late_starts} sends left over 1 ms late "
            "(no free sender thread); latency counts from the scheduled time",
            f"pgbench:   {PGBENCH_SCRIPT.relative_to(ROOT)}, -M prepared; same program and member range as the API",
            *(f"errors:    {e}" for e in results["errors"]),
            *busy_warning(results),
            "",
            *targets(results),
            "",
            *profile_lines(prof),
            "",
            audit,
        ]
    )


def to_json(facts: dict[str, Any], setup: dict[str, Any], results: dict[str, Any], mismatches: int) -> str:
    document = {
        "machine": facts,
        "setup": setup,
        **{k: asdict(v) for k, v in results.items() if isinstance(v, Phase | Profile)},
        "ratio": results["ratio"],
        "errors": results["errors"],
        "audit_mismatches": mismatches,
    }
    return json.dumps(document, indent=2, default=str)


# --- Main ---------------------------------------------------------------------------------------------------


def measure_api(args: argparse.Namespace, api_key: str, members: Sequence[tuple[int, str]], logs: Path) -> dict:
    with gunicorn(args, logs) as server:
        load = LoadGenerator(server.port, api_key, members, args)
        log(f"{server.description} on port {server.port}; warm-up {args.warmup:.0f} s")
        first = load.one()
        if first.ok != 1:
            raise SystemExit(f"the first purchase failed: {load.errors}\n{server.log_path.read_text()[-3000:]}")
        load.closed("warm-up", args.connections, args.warmup)
        checkpoint(args.database_url)
        log(f"closed loop: {args.connections} connections, {args.duration:.0f} s")
        closed = measured(
            lambda: load.closed("closed", args.connections, args.duration), args.database_url, server.process.pid
        )
        rate = closed.rate * args.half
        log(f"closed loop: {closed.rate:.1f}/s; open loop at {rate:.1f}/s, {args.duration:.0f} s")
        checkpoint(args.database_url)
        half = measured(
            lambda: load.open("open", rate, args.duration, args.open_threads), args.database_url, server.process.pid
        )
        errors = load.errors
    return {"closed": closed, "half": half, "errors": errors, "server": server.description}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, recreate=args.recreate, mark=DATABASE_MARK)
    setup_django(args.database_url)
    from loyalty.audit import ledger_audit

    started = time.perf_counter()
    program = ensure_program()
    tiers = ensure_tiers(program)
    rules = ensure_rules(program, tiers)
    members = ensure_members(program, tiers, args.members)
    api_key = new_api_key(program)
    analyze(args.database_url)
    setup = {
        **data_facts(program, rules, len(members)),
        "connections": args.connections,
        "duration": args.duration,
        "half": args.half,
        "idempotency": not args.no_idempotency_key,
        "seed": args.seed,
    }
    log(f"set-up done in {time.perf_counter() - started:.1f} s")
    if args.profile_only:
        print("\n".join(profile_lines(profile_in_process(api_key, members, args))))
        return 0
    with tempfile.TemporaryDirectory(prefix="accrual-") as tmp:
        results = measure_api(args, api_key, members, Path(tmp))
        if args.api_only:
            for name in ("closed", "half"):
                print(phase_row(f"API, {name}", results[name]))
                print(cpu_row(f"API, {name}", results[name], "client"))
            return 0
        setup["server"] = results.pop("server")
        log(f"pgbench: {args.connections} clients, {args.duration:.0f} s")
        checkpoint(args.database_url)
        results["pgbench"] = measured(
            lambda: run_pgbench(args.database_url, program, members, args, Path(tmp)),
            args.database_url,
            None,
            "pgbench",
        )
    results["ratio"] = round(results["closed"].rate / results["pgbench"].rate, 3)
    log(f"profiling {args.profile} purchases in-process")
    checkpoint(args.database_url)
    results["profile"] = profile_in_process(api_key, members, args)
    log("auditing the ledger")
    program.refresh_from_db()
    mismatches = ledger_audit(program=program)
    for mismatch in mismatches[:20]:
        log(str(mismatch))
    audit = (
        f"ledger_audit(program={PROGRAM_SLUG!r}): {len(mismatches)} mismatches "
        "(API, pgbench and profiled purchases, all in this one program)"
    )
    facts = machine_facts(args.database_url)
    if args.json:
        print(to_json(facts, setup, results, len(mismatches)))
    else:
        print(report(facts, setup, results, audit))
    log(f"total {time.perf_counter() - started:.1f} s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
