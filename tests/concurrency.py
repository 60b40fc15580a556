"""Concurrency helpers: threads released together on one barrier (`run_at_once`), and a real Celery worker process
on a real Redis broker (`Worker`), for the tests of what survives a worker's death.

The worker is a separate process (`celery -A config worker --pool=solo`) on the test database, consuming a queue
of its own on Redis (no other worker, test session or run takes its tasks). Tests kill it with SIGKILL in the
middle of a task and start another. Its broker's visibility timeout is a few seconds: a task the dead worker
had taken goes back to the queue when the next worker starts, as it would after an hour in production.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT = 3


def run_at_once(workers: int, work: Callable[[int], Any]) -> list:
    """Runs work(i) in `workers` threads released together; returns each result or exception. Each thread closes
    its database connection when done (tests using it need django_db(transaction=True) and PostgreSQL)."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _broker_url() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") > 2 else settings.REDIS_URL
    return f"{base}/{10 + int(worker or 0) % 5}"


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, log_dir: Path, **env: str) -> None:
        self.broker_url = _broker_url()
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": self.broker_url,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "LOYALTY_ALLOW_INSECURE_KEY": "1",
            "LOG_FORMAT": "text",
            **env,
        }
        self.queue = f"test-worker-{uuid.uuid4().hex}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", self.queue,
             "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: " ready." in log.read_text(), timeout, f"the worker did not start: {log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, as when a machine dies."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def send(self, task: Any, *args: Any) -> None:
        with app.connection_for_write(self.broker_url) as broker:
            task.apply_async(args=args, connection=broker, queue=self.queue)

    def log(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.log_dir.glob("worker-*.log")))


def wait_until(condition: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(message)
