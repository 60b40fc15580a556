"""Webhook delivery end to end under `make serve` (bin/serve: gunicorn, a Celery worker and beat on PostgreSQL and
Redis), against the same signed POSTs sent straight to the same receiver.

Run from the project root:

    .venv/bin/python bench/webhooks.py [--purchases 2000] [--backlog 5000] [--members 2000] [--json]

The database is `--database-url` (default `loyalty_bench_webhooks`, created and guarded as bench/ledger.py does);
the broker `--redis-url` (default Redis database 3). Phases:

1. set-up: the accrual benchmark's program, tiers, rules and members (bench/accrual.py), a new API key, one
   webhook endpoint for `points.earned` pointing at a receiver in this process (a threaded HTTP server on
   127.0.0.1; WEBHOOK_ALLOW_PRIVATE_TARGETS=1); events left over from earlier runs are marked dispatched;
2. bin/serve on a free port with WEBHOOK_POLL_SECONDS=`--poll`;
3. latency: `--purchases` purchases posted by `--senders` threads; for each, the time from the API's 201 answer
   to the receiver getting its `points.earned` (which includes up to one poll interval of waiting);
4. backlog: `--backlog` events written to the outbox in one transaction while everything runs; the time until
   the receiver has them all (dispatch, queueing, signing, sending, recording each attempt): deliveries per
   second through the whole pipeline;
5. baseline: the same number of signed bodies POSTed by this process straight to the receiver over keep-alive
   connections, with as many threads as the worker has processes: the HTTP cost alone.
Every delivery is checked: signature valid, no event lost; repeats (at least once) are counted.
"""

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accrual import (  # noqa: E402
    PurchaseFactory,
    ensure_members,
    ensure_program,
    ensure_rules,
    ensure_tiers,
    free_port,
    log,
    new_api_key,
    setup_django,
)
from ledger import ROOT, ensure_database, percentile  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_webhooks"
DATABASE_MARK = "created by bench/webhooks.py, the webhook benchmark"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=4, help="threads posting purchases")
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--poll", type=float, default=1.0, help="WEBHOOK_POLL_SECONDS for the run")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


# --- The receiver ---------------------------------------------------------------------------------------------


class Receiver:
    """Records (arrival time, event id, purchase reference, verified) for every POST; answers 204."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, str | None, bool]] = []
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.time()
                receiver.record(arrived, body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def record(self, arrived: float, body: bytes, headers: dict[str, str]) -> None:
        from events.webhooks.signing import signature

        expected = signature(
            secret=self.secret,
            message_id=headers.get("webhook-id", ""),
            timestamp=int(headers.get("webhook-timestamp", "0")),
            body=body,
        )
        event = json.loads(body)
        purchase = (event["data"].get("reason") or {}).get("purchase")
        with self.lock:
            self.arrivals.append((arrived, event["event_id"], purchase, expected == headers.get("webhook-signature")))

    def missing(self, expected: set[str]) -> set[str]:
        with self.lock:
            return expected - {event_id for _, event_id, _, _ in self.arrivals}


def wait_for(receiver: Receiver, expected: set[str], timeout: float) -> float:
    """When the receiver last got one of the expected events (all of them, or SystemExit)."""
    deadline = time.time() + timeout
    while missing := receiver.missing(expected):
        if time.time() > deadline:
            raise SystemExit(f"{len(missing)} of {len(expected)} events did not arrive in {timeout:.0f} s")
        time.sleep(0.01)
    with receiver.lock:
        return max(t for t, event_id, _, _ in receiver.arrivals if event_id in expected)


def events_since(moment: datetime) -> set[str]:
    """The ids of the points.earned events written since `moment` (a purchase of only excluded goods earns
    nothing and has none)."""
    from events.models import OutboxEvent

    return set(
        OutboxEvent.objects.filter(type="points.earned", created_at__gte=moment).values_list("event_id", flat=True)
    )


# --- bin/serve ------------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace, port: int, logs: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": str(args.concurrency),
        "WEBHOOK_POLL_SECONDS": str(args.poll),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "THROTTLE_POS": "1000000000/s",
        "LOG_LEVEL": "WARNING",
        "SERVE_STATE_DIR": str(logs),
    }
    process = subprocess.Popen(
        [str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=(logs / "serve.log").open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready/", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"bin/serve did not come up:\n{(logs / 'serve.log').read_text()[-3000:]}")
        time.sleep(0.3)


def serve_stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# --- Phases ---------------------------------------------------------------------------------------------------


def post_purchases(port: int, api_key: str, members: list, count: int, senders: int) -> dict[str, float]:
    """{purchase external id: time of its 201}."""
    answered: dict[str, float] = {}
    lock = threading.Lock()

    def send(index: int) -> None:
        factory = PurchaseFactory(members, tag=f"wh{int(time.time())}-{index}", seed=index, idempotency=True)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(count // senders):
            body, headers = factory.request(api_key)
            connection.request("POST", "/api/pos/v1/purchases/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"purchase answered {response.status}")
            with lock:
                answered[json.loads(body)["external_id"]] = time.time()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered


def backlog_write(program: Any, members: list, count: int) -> float:
    from django.db import transaction
    from django.utils import timezone

    from events.outbox import EventType, events_emit

    with transaction.atomic():
        events_emit(
            program_id=program.pk,
            type=EventType.POINTS_EARNED,
            events=[(members[i % len(members)][0], {"points": 1, "backlog": i}) for i in range(count)],
            occurred_at=timezone.now(),
        )
    return time.time()


def baseline(receiver: Receiver, bodies: list[bytes], threads: int) -> float:
    """Seconds to POST every body, signed, straight to the receiver (keep-alive, `threads` senders)."""
    from events.webhooks.signing import signed_headers

    url = receiver.url.split("/")
    host, port = url[2].split(":")

    def send(part: list[bytes]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for body in part:
            headers = signed_headers(
                secret=receiver.secret, message_id=json.loads(body)["event_id"], timestamp=int(time.time()), body=body
            )
            connection.request("POST", "/hooks", body=body, headers={**headers, "Content-Type": "application/json"})
            connection.getresponse().read()

    started = time.time()
    workers = [threading.Thread(target=send, args=(bodies[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.time() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, mark=DATABASE_MARK)
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    setup_django(args.database_url)
    from django.utils import timezone

    from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
    from events.webhooks.services import webhook_endpoint_save

    program = ensure_program()
    tiers = ensure_tiers(program)
    ensure_rules(program, tiers)
    members = ensure_members(program, tiers, args.members)
    api_key = new_api_key(program)
    OutboxEvent.objects.filter(dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    WebhookEndpoint.objects.filter(program=program).update(active=False)
    receiver = Receiver()
    endpoint = webhook_endpoint_save(program=program, url=receiver.url, event_types=["points.earned"])
    receiver.secret = endpoint.secret

    logs = Path(f"/tmp/bench-webhooks-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    logs.mkdir()
    port = free_port()
    log(f"starting bin/serve on port {port} (logs in {logs})")
    process = serve(args, port, logs)
    try:
        log(f"latency: {args.purchases} purchases from {args.senders} threads")
        started, since = time.time(), timezone.now()
        answered = post_purchases(port, api_key, members, args.purchases, args.senders)
        posted = time.time() - started
        earned = events_since(since)
        wait_for(receiver, earned, 300)
        arrival = {p: t for t, _, p, _ in sorted(receiver.arrivals, reverse=True) if p}
        latencies = sorted(arrival[p] - t for p, t in answered.items() if p in arrival)

        log(f"backlog: {args.backlog} events in one transaction")
        since = timezone.now()
        written = backlog_write(program, members, args.backlog)
        backlog = events_since(since)
        drained = wait_for(receiver, backlog, 600) - written
        recorded = WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded")
        give_up = time.time() + 60  # the last batches' answers are being recorded: stop the workers after that
        while recorded.count() < len(earned) + len(backlog) and time.time() < give_up:
            time.sleep(0.2)
    finally:
        serve_stop(process)

    bodies = [json.dumps({"event_id": f"evt_baseline{i}", "data": {}}).encode() for i in range(args.backlog)]
    log(f"baseline: {args.backlog} signed POSTs straight to the receiver from {args.concurrency} threads")
    direct = baseline(receiver, bodies, args.concurrency)

    deliveries = list(receiver.arrivals)
    pipeline = [a for a in deliveries if not a[1].startswith("evt_baseline")]
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "poll_seconds": args.poll,
        "worker_processes": args.concurrency,
        "purchases": len(answered),
        "purchases_with_points": len(earned),
        "purchase_rate_per_s": round(len(answered) / posted, 1),
        "latency_ms": {
            name: round(percentile(latencies, q) * 1000)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
        "backlog_events": args.backlog,
        "backlog_seconds": round(drained, 2),
        "pipeline_deliveries_per_s": round(args.backlog / drained, 1),
        "baseline_posts_per_s": round(args.backlog / direct, 1),
        "ratio_pipeline_to_baseline": round(direct / drained, 3),
        "events_delivered": len({a[1] for a in pipeline}),
        "repeated_deliveries": len(pipeline) - len({a[1] for a in pipeline}),
        "bad_signatures": sum(1 for a in deliveries if not a[3]),
        "deliveries_recorded": recorded.count(),
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
