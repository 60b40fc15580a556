"""Helpers of the production tests: a database outage on the real server, WSGI requests as gunicorn makes them."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import RequestFactory
from psycopg import sql


def _admin_connection() -> psycopg.Connection:
    """A connection to the server's `postgres` database, as the test user (a superuser)."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )


def _allow_connections(admin: psycopg.Connection, name: str, allowed: bool) -> None:
    statement = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.Literal(allowed)
    )
    admin.execute(statement)


@contextmanager
def database_outage() -> Iterator[None]:
    """The test database goes down as in a restart: it refuses new connections and drops the ones it has
    until the block ends. Only this test database: other test workers share the server.

    On exit it accepts connections again and this thread's (dropped) connections are closed, so the
    test goes on with a fresh one."""
    name = connection.settings_dict["NAME"]
    with _admin_connection() as admin:
        _allow_connections(admin, name, False)
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            yield
        finally:
            _allow_connections(admin, name, True)
            connections.close_all()


def database_restart() -> None:
    """A restart that is already over when the next request comes: every open connection is dead."""
    with database_outage():
        pass


def wsgi_get(path: str, **headers: Any) -> tuple[int, dict[str, str], bytes]:
    """A request through Django's WSGI handler as gunicorn runs it: unlike the test client, with the
    request_started/request_finished handlers that check, reuse or close persistent connections."""
    environ = RequestFactory().get(path, headers=headers).environ
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    response = WSGIHandler()(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()  # sends request_finished, as a WSGI server does
    return answer["status"], answer["headers"], body
