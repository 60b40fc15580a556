"""Ledger write throughput: the ledger service against the same writes in hand-written SQL.

Run from the project root (PostgreSQL on 127.0.0.1:5432 by default):

    .venv/bin/python bench/ledger.py [--members 100000] [--ops 3000] [--warmup 200] [--json]

One run does everything: creates the database if missing, migrates it, sets up
a program with `--members` members and accounts (bulk inserts, reused on the
next run), then measures four phases, one transaction per operation, single
client:

- earn, service:  `ledger_credit(member=..., amount=...)` on random members;
- earn, hand SQL: lock the account, insert the entry and its lot, update the account;
- spend, service: `ledger_debit(member=..., amount=...)` on members with enough points;
- spend, hand SQL: lock the account, read lots in spend order, insert the entry and
  its allocations, lower the lots' remaining, update the account.

The hand-SQL baseline writes the same rows into the same tables (so the same
indexes, CHECK constraints and append-only triggers apply), and the run ends
with `ledger_audit`, which must find no mismatch.
"""

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import psycopg
from psycopg import pq, sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench"
PROGRAM_SLUG = "bench"
EARN_POINTS = (50, 500)
SPEND_POINTS = (10, 400)
BATCH = 5000
DATABASE_MARK = "created by bench/ledger.py, the ledger benchmark"
LOT_BATCH = 10  # lots read per spend in the hand-SQL path before falling back to all of them


# --- Set-up -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--members", type=int, default=100_000, help="members with an account (default 100000)")
    parser.add_argument("--ops", type=int, default=3000, help="timed operations per path and kind (default 3000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed operations before each phase (default 200)")
    parser.add_argument(
        "--sample", type=int, default=100, help="untimed ops for the counts and timings split (default 100)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternations between the two paths (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for members and amounts (default 1)")
    parser.add_argument(
        "--recreate", action="store_true", help="drop and recreate the benchmark's own database first (fresh tables)"
    )
    parser.add_argument("--no-prepare", action="store_true", help="hand SQL without prepared statements")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one service earn and spend")
    args = parser.parse_args(argv)
    if args.ops < args.rounds or args.rounds < 1 or args.sample < 2 or args.warmup < 0 or args.members < 1:
        parser.error("need --ops >= --rounds >= 1, --sample >= 2, --warmup >= 0 and --members >= 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database(url: str, recreate: bool = False, mark: str = DATABASE_MARK) -> None:
    """Creates the benchmark's database when it is missing, with a comment (`mark`) that marks it as the
    benchmark's. Shared by the other benchmarks, each with its own mark.

    The benchmark adds 100,000 members and ledger rows nobody can delete (the ledger is append-only),
    so it refuses to run on a database it did not create, such as the one `DATABASE_URL` names for
    the tests or the demo. `recreate` drops the database first.
    """
    params = psycopg.conninfo.conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise SystemExit(f"No database name in {url!r}.")
    server = psycopg.conninfo.make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if row is not None and row[0] != mark:
            raise SystemExit(
                f"Database {name!r} was not created by the benchmark: name a new one with --database-url "
                f"(it is created), or adopt this one with COMMENT ON DATABASE {name} IS '{mark}'."
            )
        if row is not None and recreate:
            log(f"dropping database {name}")
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        if row is None or recreate:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            comment = sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(mark))
            conn.execute(comment)


def setup_django(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["LOYALTY_ALLOW_INSECURE_KEY"] = "1"
    os.environ["DATABASE_URL"] = url
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
            slug=PROGRAM_SLUG, name="Benchmark", currency="EUR", expiry_policy="days", expiry_period=365
        )
    return program


def create_members(program: Any, count: int, prefix: str = "bench") -> list[int]:
    """Bulk-inserts the program's members numbered below `count` that are missing (external id
    `<prefix>-<n>`), and an account for each member without one; returns the ids of the new accounts.

    Bulk inserts: the set-up is not what is measured, and `member_create` would take minutes for
    100,000 members. Shared by the benchmarks that need a large program.
    """
    from django.utils import timezone

    from loyalty.models import Account
    from members.models import Member

    have = Member.objects.filter(program=program).count()
    if have < count:
        log(f"creating {count - have} members")
        now = timezone.now()
        for start in range(have, count, BATCH):
            Member.objects.bulk_create(
                [
                    Member(
                        program=program,
                        external_id=f"{prefix}-{i}",
                        card=f"9{i:011d}",
                        referral_code=f"{prefix.upper()}{i:08d}",
                        enrolled_at=now,
                    )
                    for i in range(start, min(start + BATCH, count))
                ],
                ignore_conflicts=True,
            )
    without = list(Member.objects.filter(program=program, account__isnull=True).values_list("pk", flat=True))
    if without:
        log(f"creating {len(without)} accounts")
        Account.objects.bulk_create(
            [Account(member_id=pk, program_id=program.pk) for pk in without], batch_size=BATCH, ignore_conflicts=True
        )
    return without


def ensure_members(program: Any, count: int) -> list[int]:
    """The ids of `count` members of the program, each with an account."""
    from members.models import Member

    create_members(program, count)
    return list(Member.objects.filter(program=program).order_by("pk").values_list("pk", flat=True)[:count])


# --- Work plans ----------------------------------------------------------------------------------------------


def earn_plan(rng: random.Random, member_ids: Sequence[int], count: int) -> list[tuple[int, int]]:
    return [(rng.choice(member_ids), rng.randint(*EARN_POINTS)) for _ in range(count)]


def spend_plans(rng: random.Random, program: Any, count: int) -> list[list[tuple[int, int]]]:
    """Two plans of `count` redemptions on members who have the points. Drawn from one pool that
    tracks each balance, so every redemption succeeds whatever the order the two plans run in."""
    from loyalty.models import Account

    low = SPEND_POINTS[0]
    pool = [
        list(row) for row in Account.objects.filter(program=program, available__gte=low).values_list("pk", "available")
    ]
    plan = []
    while len(plan) < 2 * count:
        if not pool:
            raise SystemExit("Not enough members with points to spend: raise --ops for earning or rerun.")
        index = rng.randrange(len(pool))
        member_id, available = pool[index]
        amount = min(rng.randint(*SPEND_POINTS), available)
        plan.append((member_id, amount))
        pool[index][1] -= amount
        if pool[index][1] < low:
            pool[index] = pool[-1]
            pool.pop()
    return [plan[0::2], plan[1::2]]


# --- The two paths -------------------------------------------------------------------------------------------


class Service:
    """The ledger service, as the API calls it: one `@transaction.atomic` call per operation."""

    name = "service"

    def __init__(self, show_sql: bool = False) -> None:
        self.members: dict[int, Any] = {}
        self.show_sql = show_sql

    def load(self, plan: Sequence[tuple[int, int]]) -> None:
        """Fetches the plan's members before the clock starts, as a view would have them already."""
        from members.models import Member

        missing = {member_id for member_id, _ in plan} - self.members.keys()
        self.members.update(Member.objects.in_bulk(list(missing)))

    def earn(self, item: tuple[int, int]) -> int:
        from loyalty.services.ledger import ledger_credit

        ledger_credit(member=self.members[item[0]], amount=item[1])
        return 0

    def spend(self, item: tuple[int, int]) -> int:
        from loyalty.services.ledger import ledger_debit

        entry = ledger_debit(member=self.members[item[0]], amount=item[1])
        return len(entry.allocated)

    def pgconn(self) -> Any:
        return django_connection().pgconn

    def statements(self, kind: str, plan: Sequence[tuple[int, int]]) -> float:
        """SQL statements per op as Django logs them (CaptureQueriesContext), BEGIN and COMMIT left out."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            for item in plan:
                getattr(self, kind)(item)
        queries = [q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
        if self.show_sql:
            log(f"-- service {kind}, {len(plan)} ops:")
            log(";\n".join(queries[: round(len(queries) / len(plan))]))
        return len(queries) / len(plan)


LOCK_ACCOUNT = """
SELECT a.available, a.debt, m.status FROM loyalty_account a JOIN members_member m ON m.id = a.member_id
WHERE a.member_id = %s FOR UPDATE OF a"""
INSERT_ENTRY = """
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at,
                           actor_id, reason, counterpart_id, details)
VALUES (%s, %s, %s, %s, 0, NULL, %s, %s, NULL, '', NULL, '{}'::jsonb) RETURNING id"""
INSERT_LOT = """
INSERT INTO loyalty_lot (program_id, member_id, entry_id, amount, remaining, pending, occurred_at, available_at,
                         expires_at, warned_at)
VALUES (%s, %s, %s, %s, %s, false, %s, %s, %s, NULL)"""
CREDIT_ACCOUNT = """
UPDATE loyalty_account SET available = available + %s, earned = earned + %s, updated_at = %s WHERE member_id = %s"""
SPENDABLE_LOTS = """
SELECT id, remaining FROM loyalty_lot
WHERE member_id = %s AND remaining > 0 AND NOT pending AND (expires_at IS NULL OR expires_at > %s)
ORDER BY expires_at NULLS LAST, occurred_at, id LIMIT %s"""
INSERT_ALLOCATIONS = """
INSERT INTO loyalty_allocation (member_id, entry_id, lot_id, amount, created_at)
SELECT %s, %s, t.lot_id, t.take, %s FROM unnest(%s::bigint[], %s::bigint[]) AS t(lot_id, take)"""
CONSUME_LOTS = """
UPDATE loyalty_lot l SET remaining = l.remaining - t.take FROM unnest(%s::bigint[], %s::bigint[]) AS t(id, take)
WHERE l.id = t.id AND l.member_id = %s"""
DEBIT_ACCOUNT = """
UPDATE loyalty_account SET available = available - %s, redeemed = redeemed + %s, updated_at = %s
WHERE member_id = %s"""


class BenchError(Exception):
    pass


class HandSql:
    """The same rows written by hand with psycopg: own connection, autocommit off, one transaction per op.

    psycopg's defaults apply: server-side parameters, statements prepared after five executions
    (`--no-prepare` turns preparing off).
    """

    name = "hand SQL"

    def __init__(self, url: str, program: Any, prepare: bool = True) -> None:
        self.conn = psycopg.connect(url, autocommit=False)
        if not prepare:
            self.conn.prepare_threshold = None
        self.program = program
        self.executed = 0

    def _run(self, cur: psycopg.Cursor, query: str, params: Sequence[Any]) -> list[tuple]:
        cur.execute(query, params)
        self.executed += 1
        return cur.fetchall() if cur.description else []

    def _transaction(self, work: Callable[[psycopg.Cursor], int]) -> int:
        try:
            with self.conn.cursor() as cur:
                result = work(cur)
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()
        return result

    def _lock(self, cur: psycopg.Cursor, member_id: int) -> int:
        available, debt, status = self._run(cur, LOCK_ACCOUNT, (member_id,))[0]
        if status != "active" or debt:
            raise BenchError(f"member #{member_id}: {status}, debt {debt}; the baseline handles neither")
        return available

    def earn(self, item: tuple[int, int]) -> int:
        member_id, amount = item
        now = datetime.now(UTC)
        expires_at = self.program.expires_at_for(now)

        def work(cur: psycopg.Cursor) -> int:
            self._lock(cur, member_id)
            entry_id = self._run(cur, INSERT_ENTRY, (self.program.pk, member_id, "earn", amount, now, now))[0][0]
            self._run(cur, INSERT_LOT, (self.program.pk, member_id, entry_id, amount, amount, now, now, expires_at))
            self._run(cur, CREDIT_ACCOUNT, (amount, amount, now, member_id))
            return 0

        return self._transaction(work)

    def _takes(self, cur: psycopg.Cursor, member_id: int, amount: int, now: datetime) -> list[tuple[int, int]]:
        """(lot id, points) to consume, soonest expiry first, never-expiring last, ties by age."""
        lots = self._run(cur, SPENDABLE_LOTS, (member_id, now, LOT_BATCH))
        if sum(remaining for _, remaining in lots) < amount and len(lots) == LOT_BATCH:
            lots = self._run(cur, SPENDABLE_LOTS, (member_id, now, None))
        takes, needed = [], amount
        for lot_id, remaining in lots:
            if needed == 0:
                break
            take = min(remaining, needed)
            takes.append((lot_id, take))
            needed -= take
        if needed:
            raise BenchError(f"member #{member_id}: lots cover {amount - needed} of {amount} points")
        return takes

    def spend(self, item: tuple[int, int]) -> int:
        member_id, amount = item
        now = datetime.now(UTC)

        def work(cur: psycopg.Cursor) -> int:
            if self._lock(cur, member_id) < amount:
                raise BenchError(f"member #{member_id}: fewer than {amount} points")
            takes = self._takes(cur, member_id, amount, now)
            entry_id = self._run(cur, INSERT_ENTRY, (self.program.pk, member_id, "redeem", -amount, now, now))[0][0]
            lot_ids, points = [lot for lot, _ in takes], [take for _, take in takes]
            self._run(cur, INSERT_ALLOCATIONS, (member_id, entry_id, now, lot_ids, points))
            self._run(cur, CONSUME_LOTS, (lot_ids, points, member_id))
            self._run(cur, DEBIT_ACCOUNT, (amount, amount, now, member_id))
            return len(takes)

        return self._transaction(work)

    def pgconn(self) -> Any:
        return self.conn.pgconn

    def statements(self, kind: str, plan: Sequence[tuple[int, int]]) -> float:
        self.executed = 0
        timed(getattr(self, kind), plan)
        return self.executed / len(plan)


# --- Measuring -----------------------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    path: str
    ops: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    lots_per_op: float
    statements_per_op: float = 0.0
    round_trips_per_op: float = 0.0
    db_ms_per_op: float = 0.0
    python_ms_per_op: float = 0.0


def timed(op: Callable[[tuple[int, int]], int], plan: Sequence[tuple[int, int]]) -> tuple[float, list[float], int]:
    """Runs `op` on every item; returns the wall time, each op's latency and the lots consumed."""
    latencies, lots = [], 0
    clock = time.perf_counter
    start = clock()
    for item in plan:
        began = clock()
        lots += op(item)
        latencies.append(clock() - began)
    return clock() - start, latencies, lots


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def result_of(kind: str, path: str, seconds: float, latencies: list[float], lots: int) -> Result:
    ordered = sorted(latencies)
    ms = [round(value * 1000, 3) for value in (*(percentile(ordered, f) for f in (0.5, 0.95, 0.99)), fmean(ordered))]
    return Result(
        kind,
        path,
        len(ordered),
        round(seconds, 3),
        round(len(ordered) / seconds, 1),
        *ms,
        lots_per_op=round(lots / len(ordered), 2),
    )


def round_trips(path: Service | HandSql, kind: str, plan: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """Statements per op, and client-server round trips per op from libpq's protocol trace:
    the client waits for the server after each simple-protocol Query and each Sync."""
    pgconn = path.pgconn()
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            statements = path.statements(kind, plan)
        finally:
            pgconn.untrace()
        trace.seek(0)
        waits = sum(1 for line in trace if line.rstrip("\n").split("\t")[:3:2] in (["F", "Query"], ["F", "Sync"]))
    return statements, waits / len(plan)


def driver_time(path: Service | HandSql, kind: str, plan: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """Seconds spent inside psycopg (sending, waiting for the server, receiving; commits included),
    and seconds in all, over `plan`. Every blocking call of psycopg goes through `Connection.wait`."""
    original, inside = psycopg.Connection.wait, [0.0]

    def wait(self: psycopg.Connection, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    psycopg.Connection.wait = wait  # type: ignore[method-assign]
    try:
        seconds = timed(getattr(path, kind), plan)[0]
    finally:
        psycopg.Connection.wait = original  # type: ignore[method-assign]
    return inside[0], seconds


def sample(path: Service | HandSql, result: Result, plan: Sequence[tuple[int, int]]) -> None:
    """Untimed: statements and round trips on one half of `plan`, time inside the driver on the other."""
    counted, split = plan[: len(plan) // 2], plan[len(plan) // 2 :]
    statements, trips = round_trips(path, result.kind, counted)
    db_seconds, seconds = driver_time(path, result.kind, split)
    result.statements_per_op, result.round_trips_per_op = round(statements, 2), round(trips, 2)
    result.db_ms_per_op = round(db_seconds / len(split) * 1000, 3)
    result.python_ms_per_op = round((seconds - db_seconds) / len(split) * 1000, 3)


def measure(
    kind: str, paths: Sequence[Service | HandSql], plans: Sequence[Sequence[tuple[int, int]]], args: argparse.Namespace
) -> list[Result]:
    """Warms both paths up, then times them in alternating rounds, so that a burst of load from
    elsewhere on the machine falls on both; last, the untimed samples."""
    w, n = args.warmup, args.ops
    for path, plan in zip(paths, plans, strict=True):
        if isinstance(path, Service):
            path.load(plan)
        timed(getattr(path, kind), plan[:w])
    log(f"{kind}: {n} timed ops per path in {args.rounds} rounds")
    runs: dict[str, list[tuple[float, list[float], int]]] = {path.name: [] for path in paths}
    for r in range(args.rounds):
        chunk = slice(w + r * n // args.rounds, w + (r + 1) * n // args.rounds)
        for path, plan in list(zip(paths, plans, strict=True))[:: 1 if r % 2 == 0 else -1]:
            runs[path.name].append(timed(getattr(path, kind), plan[chunk]))
    results = []
    for path, plan in zip(paths, plans, strict=True):
        seconds = sum(run[0] for run in runs[path.name])
        latencies = [latency for run in runs[path.name] for latency in run[1]]
        result = result_of(kind, path.name, seconds, latencies, sum(run[2] for run in runs[path.name]))
        sample(path, result, plan[w + n :])
        results.append(result)
    return results


# --- Report --------------------------------------------------------------------------------------------------


def machine_facts(url: str) -> dict[str, Any]:
    import django

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(url, autocommit=True) as conn:
        server = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in ("server_version", "synchronous_commit", "shared_buffers")
        }
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        "postgresql": server["server_version"].split()[0],
        "synchronous_commit": server["synchronous_commit"],
        "shared_buffers": server["shared_buffers"],
    }


class CpuMeter:
    """CPU seconds used on the machine while it runs, split into the benchmark's own (this process
    and its two PostgreSQL backends) and everything else: other work skews the figures."""

    def __init__(self, connections: Sequence[psycopg.Connection]) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.backends = [conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in connections]
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]  # user..steal
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        backends = 0
        for pid in self.backends:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            backends += int(stat[11]) + int(stat[12])  # utime, stime
        own = os.times()
        return busy / self.tick, own.user + own.system + backends / self.tick, time.monotonic()

    def stop(self) -> dict[str, float] | None:
        try:
            end = self._sample()
        except (OSError, IndexError, ValueError):  # PostgreSQL on another machine, or no /proc
            return None
        busy, bench, seconds = (e - s for e, s in zip(end, self.start, strict=True))
        return {"seconds": round(seconds, 1), "bench": round(bench, 1), "other": round(max(0.0, busy - bench), 1)}


def cpu_line(cpu: dict[str, float] | None) -> str:
    if cpu is None:
        return "not measured (needs /proc and PostgreSQL on this machine)"
    return (
        f"over the {cpu['seconds']} s of warm-up, timed and sampled ops the benchmark used {cpu['bench']} CPU-s "
        f"(client and its two backends), other processes {cpu['other']} CPU-s, of {os.cpu_count()} cores"
    )


def django_connection() -> psycopg.Connection:
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def format_table(results: list[Result]) -> list[str]:
    header = (
        f"{'kind':<6} {'path':<9} {'ops/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'stmts/op':>8} {'trips/op':>8} {'db ms/op':>8} {'py ms/op':>8} {'lots/op':>7}"
    )
    lines = [header, "-" * len(header)]
    for kind in ("earn", "spend"):
        rows = {r.path: r for r in results if r.kind == kind}
        for r in rows.values():
            lines.append(
                f"{r.kind:<6} {r.path:<9} {r.ops_per_s:>7.0f} {r.p50_ms:>7.2f} {r.p95_ms:>7.2f} {r.p99_ms:>7.2f} "
                f"{r.statements_per_op:>8.2f} {r.round_trips_per_op:>8.2f} {r.db_ms_per_op:>8.2f} "
                f"{r.python_ms_per_op:>8.2f} {r.lots_per_op:>7.2f}"
            )
        service, hand = rows["service"], rows["hand SQL"]
        lines.append(
            f"{kind:<6} {'ratio':<9} {service.ops_per_s / hand.ops_per_s:>7.2f} {hand.p50_ms / service.p50_ms:>7.2f}"
            "  service ops/s / hand-SQL ops/s; hand-SQL p50 / service p50"
        )
    return lines


def report(facts: dict[str, Any], setup: dict[str, Any], results: list[Result], mismatches: int) -> str:
    return "\n".join(
        [
            f"Ledger write benchmark, {facts['date']}",
            f"machine:  {facts['cpu']}, {facts['cores']} cores, {facts['os']}",
            f"software: Python {facts['python']}, Django {facts['django']}, psycopg {facts['psycopg']}, "
            f"PostgreSQL {facts['postgresql']} (synchronous_commit={facts['synchronous_commit']}, "
            f"shared_buffers={facts['shared_buffers']}); client and server on this machine",
            f"data:     {setup['members']:,} members, {setup['entries_before']:,} ledger entries before the run; "
            f"per row {setup['ops']:,} timed ops in {setup['rounds']} rounds alternating the paths, after "
            f"{setup['warmup']} warm-up ops; then {setup['sample']} untimed ops for the last four columns",
            f"cpu:      {cpu_line(setup['cpu'])}",
            "hand SQL: server-side parameters; "
            + (
                "statements prepared after five executions (psycopg's default)"
                if setup["hand_sql_prepared"]
                else "no prepared statements (--no-prepare)"
            ),
            "",
            *format_table(results),
            "",
            "stmts/op: SQL statements without BEGIN/COMMIT (service: as CaptureQueriesContext logs them);",
            "trips/op: client-server round trips, BEGIN and COMMIT included (libpq protocol trace);",
            "db ms/op: time in psycopg's blocking calls (adapt parameters, send, wait for the server, receive);",
            "py ms/op: the rest of the op (Python: the ORM and the service for the service path).",
            f"ledger_audit: {mismatches} mismatches",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, recreate=args.recreate)
    setup_django(args.database_url)
    from loyalty.audit import ledger_audit
    from loyalty.models import Entry

    started = time.perf_counter()
    program = ensure_program()
    member_ids = ensure_members(program, args.members)
    log(f"set-up done in {time.perf_counter() - started:.1f} s")
    rng = random.Random(args.seed)
    per_phase = args.warmup + args.ops + args.sample
    setup = {
        "members": len(member_ids),
        "entries_before": Entry.objects.filter(program=program).count(),
        "ops": args.ops,
        "warmup": args.warmup,
        "sample": args.sample,
        "rounds": args.rounds,
        "seed": args.seed,
        "hand_sql_prepared": not args.no_prepare,
    }

    hand = HandSql(args.database_url, program, prepare=not args.no_prepare)
    results = []
    try:
        paths = (Service(show_sql=args.show_sql), hand)
        meter = CpuMeter([hand.conn, django_connection()])
        results += measure("earn", paths, [earn_plan(rng, member_ids, per_phase) for _ in paths], args)
        results += measure("spend", paths, spend_plans(rng, program, per_phase), args)
        setup["cpu"] = meter.stop()
    finally:
        hand.conn.close()

    log("auditing the ledger")
    mismatches = ledger_audit(program=program)
    for mismatch in mismatches[:20]:
        log(str(mismatch))
    facts = machine_facts(args.database_url)
    if args.json:
        document = {"machine": facts, "setup": setup, "results": [asdict(r) for r in results]}
        print(json.dumps({**document, "audit_mismatches": len(mismatches)}, indent=2))
    else:
        print(report(facts, setup, results, len(mismatches)))
    log(f"total {time.perf_counter() - started:.1f} s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
