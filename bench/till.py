"""The till's other calls on its critical path, each against the same database work written by hand (pgbench).

Run from the project root, after (or instead of) bench/accrual.py, on the same database:

    .venv/bin/python bench/till.py [--duration 10] [--connections 8] [--calls lookup,detail,...]

Calls, each a closed loop of `--connections` keep-alive connections to gunicorn (2 gthread workers x 2 threads,
as bench/accrual.py), then its ceiling: pgbench running bench/till/<call>.sql with as many clients for as long:

- lookup: GET members/lookup/?card= (a random member);    ceiling: the member and account read by card
- detail: GET members/{id}/;                               ceiling: the same by id
- voucher_validate: POST vouchers/validate/ (campaign vouchers, not consumed);  ceiling: voucher and reward read
- voucher_redeem: POST vouchers/redeem/ (each voucher once, Idempotency-Key);  ceiling: lock, mark redeemed, event
- redemption: POST members/{id}/redemptions/ (a 100-point reward, members funded at set-up, Idempotency-Key);
  ceiling: lock the account, spend one lot, entry, allocation, balances, voucher, two events
- return: POST returns/ (a whole purchase made at set-up, each once);  ceiling: lock, reverse entry, the lot and
  balances, the return row, the purchase's returned figures, the event

The set-up (the accrual benchmark's program, 100,000 members) adds a reward, 500 funded members, campaign vouchers
and purchases to return, as many as a run may use. Everything shares the machine's 2 cores; the report gives
each call's rate, latency, CPU per call (gunicorn, PostgreSQL), its ceiling's rate and the ratio, and the
purchase's ratio from bench/accrual.py for comparison (run that one for it).
"""

import argparse
import http.client
import itertools
import json
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import accrual  # bench/ is the script's folder, first on sys.path
import psycopg
from ledger import ensure_database

CEILINGS = Path(__file__).resolve().parent / "till"
CALLS = ("lookup", "detail", "voucher_validate", "voucher_redeem", "redemption", "return")
FUNDED = 500  # members holding points to redeem (a lot of 10,000,000 each)
REWARD = "Bench: 5 CZK off"
Request = tuple[str, str, bytes | None, dict[str, str]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=accrual.DEFAULT_DATABASE_URL)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", default=",".join(CALLS), help=f"comma-separated, of {', '.join(CALLS)}")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


# --- Set-up ---------------------------------------------------------------------------------------------------


@dataclass
class Stock:
    """What the calls use: members, the reward, vouchers and purchases (shared by the senders, taken once each)."""

    members: list[tuple[int, str]]
    funded: list[int]
    reward_id: int
    codes: list[str]  # to validate (never redeemed)
    to_redeem: Iterator[str]  # each redeemed once
    to_return: Iterator[tuple[str, str]]  # (purchase external id, total)
    voucher_range: tuple[int, int]  # the pgbench pool of vouchers (ids)
    purchase_range: tuple[int, int]  # the pgbench pool of purchases (ids)
    lock: threading.Lock

    def take(self, pool: Iterator[Any]) -> Any:
        with self.lock:
            return next(pool)


def ensure_stock(program: Any, members: list[tuple[int, str]], need: int) -> Stock:
    """The reward, funded members, `need` vouchers and purchases for the API and as many for pgbench."""
    from django.db import transaction
    from django.utils import timezone

    from loyalty.models import Account
    from loyalty.services.ledger import ledger_credit
    from loyalty.services.purchases import PurchaseInput, purchase_record
    from members.models import Member
    from rewards.models import Reward, RewardKind, Voucher
    from rewards.services.campaigns import campaign_issue

    reward, _ = Reward.objects.get_or_create(
        program=program, name=REWARD,
        defaults={"kind": RewardKind.FIXED_DISCOUNT, "value": Decimal(5), "points_cost": 100},
    )  # fmt: skip
    funded = [member_id for member_id, _ in members[:FUNDED]]
    for member in Member.objects.filter(pk__in=funded).select_related("program"):
        if Account.objects.get(pk=member.pk).available < 1_000_000:
            ledger_credit(member=member, amount=10_000_000, expires_at=None)
    tag = f"T{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(2)}"
    targets = Member.objects.filter(pk__in=[member_id for member_id, _ in members[: 2 * need]])
    issued = campaign_issue(program=program, reward=reward, members_queryset=targets, campaign=tag)
    vouchers = list(Voucher.objects.filter(campaign=tag).order_by("pk").values_list("pk", "code"))
    assert issued == len(vouchers) >= 2 * need, "campaign vouchers"
    api_vouchers, bench_vouchers = vouchers[:need], vouchers[need:]
    bought = []
    now = timezone.now() - timedelta(minutes=1)
    buyers = list(Member.objects.filter(pk__in=[i for i, _ in members[FUNDED : FUNDED + 2 * need]]))
    for n, member in enumerate(buyers[: 2 * need]):
        total = Decimal(100 + n % 900)
        data = PurchaseInput(external_id=f"{tag}-{n}", occurred_at=now, currency=program.currency, total=total)
        with transaction.atomic():
            result = purchase_record(program=program, member=member, data=data)
        bought.append((result.purchase.pk, data.external_id, str(total)))
    return Stock(
        members=members,
        funded=funded,
        reward_id=reward.pk,
        codes=[code for _, code in api_vouchers[:200]],
        to_redeem=iter([code for _, code in api_vouchers[200:]]),
        to_return=iter([(external_id, total) for _, external_id, total in bought[:need]]),
        voucher_range=(bench_vouchers[0][0], bench_vouchers[-1][0]),
        purchase_range=(bought[need][0], bought[-1][0]),
        lock=threading.Lock(),
    )


# --- The calls --------------------------------------------------------------------------------------------------


def requests_of(call: str, stock: Stock, api_key: str, rng: random.Random, tag: str) -> Callable[[], Request]:
    headers = {"Authorization": f"Api-Key {api_key}", "Content-Type": "application/json"}
    serial = itertools.count()

    def post(path: str, body: dict[str, Any], idempotent: bool = False) -> Request:
        extra = {"Idempotency-Key": f"{tag}-{next(serial)}"} if idempotent else {}
        return "POST", path, json.dumps(body).encode(), {**headers, **extra}

    def lookup() -> Request:
        return "GET", f"/api/pos/v1/members/lookup/?card={rng.choice(stock.members)[1]}", None, headers

    def detail() -> Request:
        return "GET", f"/api/pos/v1/members/{rng.choice(stock.members)[0]}/", None, headers

    def voucher_validate() -> Request:
        return post("/api/pos/v1/vouchers/validate/", {"code": rng.choice(stock.codes), "basket_amount": "500.00"})

    def voucher_redeem() -> Request:
        body = {"code": stock.take(stock.to_redeem), "basket_amount": "500.00", "reference": f"{tag}-{next(serial)}"}
        return post("/api/pos/v1/vouchers/redeem/", body, idempotent=True)

    def redemption() -> Request:
        member = rng.choice(stock.funded)
        return post(f"/api/pos/v1/members/{member}/redemptions/", {"reward_id": stock.reward_id}, idempotent=True)

    def return_() -> Request:
        external_id, total = stock.take(stock.to_return)
        body = {"external_id": f"R-{external_id}", "purchase_external_id": external_id, "amount": total}
        return post("/api/pos/v1/returns/", body)

    return {"lookup": lookup, "detail": detail, "voucher_validate": voucher_validate,
            "voucher_redeem": voucher_redeem, "redemption": redemption, "return": return_}[call]  # fmt: skip


def closed_loop(port: int, make: Callable[[], Callable[[], Request]], connections: int, seconds: float):
    """Each connection sends its next request as soon as the answer arrives; (latencies, statuses, errors)."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []

    def loop(next_request: Callable[[], Request]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (began := time.perf_counter()) < deadline:
            try:
                method, path, body, headers = next_request()
            except StopIteration:
                return  # the stock ran out: fewer requests, the rate still counts them
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
                status: int | str = response.status
                if status >= 300 and len(errors) < 3:
                    errors.append(f"{status}: {data[:300]!r}")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status = type(exc).__name__
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
        conn.close()

    threads = [threading.Thread(target=loop, args=(make(),), daemon=True) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, errors, time.perf_counter() - started


def run_ceiling(call: str, args: argparse.Namespace, program: Any, stock: Stock, logs: Path) -> accrual.Phase:
    params = psycopg.conninfo.conninfo_to_dict(args.database_url)
    lo, hi = accrual.member_range(stock.members)
    variables = {
        "program": program.pk, "lo": lo, "hi": hi, "count": len(stock.members), "funded_lo": min(stock.funded),
        "funded_hi": max(stock.funded), "vlo": stock.voucher_range[0], "vhi": stock.voucher_range[1],
        "plo": stock.purchase_range[0], "phi": stock.purchase_range[1], "reward": stock.reward_id, "n": 0,
        "run": f"{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(2)}",
    }  # fmt: skip
    command = [accrual.pgbench_path(), "-n", "-M", "prepared", "-c", str(args.connections), "-j", "2"]
    command += ["-T", str(round(args.duration)), "-f", str(CEILINGS / f"{call}.sql")]
    command += ["--log", f"--log-prefix={logs / call}"]
    command += [f"--host={params.get('host', '127.0.0.1')}", f"--port={params.get('port', '5432')}"]
    command += [f"--username={params.get('user', 'postgres')}"]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(params["dbname"])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pgbench ({call}) failed:\n{done.stdout}\n{done.stderr}")
    for old in logs.glob("pgbench.*"):
        old.unlink()
    for path in logs.glob(f"{call}.*"):
        path.rename(logs / f"pgbench.{path.name}")
    phase = accrual.pgbench_phase(done.stdout, logs)
    for path in logs.glob("pgbench.*"):
        path.unlink()
    return phase


# --- Report -------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.no_idempotency_key = False
    calls = [call.strip() for call in args.calls.split(",") if call.strip()]
    ensure_database(args.database_url, recreate=False, mark=accrual.DATABASE_MARK)
    accrual.setup_django(args.database_url)
    from loyalty.audit import ledger_audit

    started = time.perf_counter()
    program = accrual.ensure_program()
    tiers = accrual.ensure_tiers(program)
    accrual.ensure_rules(program, tiers)
    members = accrual.ensure_members(program, tiers, args.members)
    api_key = accrual.new_api_key(program)
    need = int(600 * (args.duration + args.warmup)) + 400  # more than a call can use at 600/s
    stock = ensure_stock(program, members, need)
    accrual.analyze(args.database_url)
    accrual.log(f"set-up done in {time.perf_counter() - started:.1f} s")
    rows = []
    with tempfile.TemporaryDirectory(prefix="till-") as tmp, accrual.gunicorn(args, Path(tmp)) as server:
        rng = random.Random(args.seed)
        for call in calls:
            tag = f"{call}-{secrets.token_hex(3)}"

            def make(call: str = call, tag: str = tag) -> Callable[[], Request]:
                return requests_of(call, stock, api_key, random.Random(rng.getrandbits(64)), f"{tag}-{rng.random()}")

            closed_loop(server.port, make, args.connections, args.warmup)
            accrual.checkpoint(args.database_url)
            accrual.log(f"{call}: API, {args.connections} connections, {args.duration:.0f} s")
            result: dict[str, Any] = {}

            def api_phase(call: str = call, result: dict[str, Any] = result) -> accrual.Phase:
                latencies, statuses, errors, seconds = closed_loop(server.port, make, args.connections, args.duration)
                result["errors"] = errors
                return accrual.phase_of(call, latencies, statuses, seconds)

            api = accrual.measured(api_phase, args.database_url, server.process.pid)
            accrual.checkpoint(args.database_url)
            accrual.log(f"{call}: ceiling (pgbench bench/till/{call}.sql)")
            ceiling = accrual.measured(
                lambda call=call: run_ceiling(call, args, program, stock, Path(tmp)), args.database_url, None, "pgbench"
            )
            rows.append((call, api, ceiling, result.get("errors", [])))
    program.refresh_from_db()
    mismatches = ledger_audit(program=program)
    print(report(rows, accrual.machine_facts(args.database_url), len(mismatches)))
    return 1 if mismatches else 0


def report(rows: list[tuple[str, Any, Any, list[str]]], facts: dict[str, Any], mismatches: int) -> str:
    lines = [
        f"Till calls benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine:  {facts['cpu']}, {facts['cores']} cores; PostgreSQL {facts['pg_server_version']} "
        f"(synchronous_commit={facts['pg_synchronous_commit']}); Python {facts['python']}, Django {facts['django']}",
        "",
        f"{'call':<18} {'API/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'app ms':>7} {'pg ms':>6} "
        f"{'ceiling/s':>10} {'ratio':>6}",
    ]
    for call, api, ceiling, errors in rows:
        per = 1000 / api.rate if api.rate else 0.0
        lines.append(
            f"{call:<18} {api.rate:>8.1f} {api.p50_ms:>7.1f} {api.p99_ms:>7.1f} {api.requests - api.ok:>6} "
            f"{api.cpu.get('gunicorn', 0) * per:>7.2f} {api.cpu['postgresql'] * per:>6.2f} {ceiling.rate:>10.1f} "
            f"{api.rate / ceiling.rate if ceiling.rate else 0:>6.3f}"
        )
        lines += [f"    {error}" for error in errors]
    lines += [
        "",
        "app ms, pg ms: CPU per call of gunicorn and of PostgreSQL in the API's phase; ceiling: pgbench, the same",
        f"clients, bench/till/<call>.sql. ledger_audit of the program: {mismatches} mismatches.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
