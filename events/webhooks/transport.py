"""HTTP POST to a webhook receiver without letting a URL reach what it must not.

Only http(s); the host is resolved once and every address it resolves to is checked (no loopback, private,
link-local, multicast or reserved addresses unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set); the connection is made
to the checked address (a second DNS answer cannot redirect it), with TLS verified against the host name;
redirects are not followed; one timeout bounds the whole exchange (connecting, sending and reading the answer:
a receiver that drips its answer a byte at a time is cut off at the deadline too).
"""

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlsplit

from django.conf import settings

EXCERPT_CHARS = 500
URL_SAFE = "/%:@!$&'()*+,;=-._~?"


class TargetRefused(ValueError):
    """The URL may not be called; `code` is stable (problem+json)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _address_refused(address: str) -> bool:
    """Not a public unicast address, or an IPv6 address that carries a refused IPv4 one (mapped, 6to4, Teredo,
    NAT64: a gateway would forward to it)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.is_site_local or any(v4 is not None and _address_refused(str(v4)) for v4 in embedded):
            return True
    return not ip.is_global or ip.is_multicast


HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _host_valid(host: str) -> bool:
    """An IP address, or a DNS name (an intranet name without dots too; international names in their IDNA form)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.lower().removesuffix(".").split(".")
    return len(ascii_host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)


def url_checked(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable URL, or TargetRefused. No DNS."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("webhook_url_scheme", "Only http and https URLs can receive webhooks.")
    if not parts.hostname or parts.username or parts.password:
        raise TargetRefused("webhook_url_invalid", "The URL needs a host and no user name or password.")
    if not _host_valid(parts.hostname):
        raise TargetRefused("webhook_url_invalid", f"The URL's host {parts.hostname!r} is not a host name or address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("webhook_url_invalid", "The URL's port is not a number from 1 to 65535.") from exc
    # Percent-encoded as the request line needs (a receiver's path may hold any character); `%` already there
    # is kept, so an encoded URL goes out as written.
    path = quote(parts.path or "/", safe=URL_SAFE) + (f"?{quote(parts.query, safe=URL_SAFE)}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def target_resolve(url: str) -> Target:
    """The URL's parts and the address to connect to, refusing hosts that resolve to private addresses."""
    scheme, host, port, path = url_checked(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused("webhook_host_unresolved", f"The host {host} does not resolve.") from exc
    addresses = [cast(str, info[4][0]) for info in infos]  # IPv4 and IPv6 socket addresses start with text
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS and any(_address_refused(a) for a in addresses):
        raise TargetRefused(
            "webhook_target_private",
            f"The host {host} resolves to a loopback, private or reserved address; webhooks go to public "
            "addresses only (WEBHOOK_ALLOW_PRIVATE_TARGETS allows others).",
        )
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


class _Deadline:
    """Cuts a connection off when an attempt's time is up: each socket operation has its own timeout, so without
    it a receiver answering a byte at a time could hold the attempt for ever. Connecting waits at most the time
    left; at the deadline a timer shuts the connection down (through a duplicate of its descriptor, which TLS
    wrapping leaves alone), which ends whatever handshake, read or write is under way."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._duplicate: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's time is up")
        return left

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            if self._duplicate is not None:
                self._duplicate.close()  # a connection given up for a new one
            self._duplicate = sock.dup()
            if self.expired:
                self._shutdown()
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._duplicate is not None:
            try:
                self._duplicate.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected any more

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._duplicate is not None:
                self._duplicate.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float, **kwargs: Any) -> None:
        super().__init__(target.host, target.port, timeout=timeout, **kwargs)
        self.address = target.address
        self.deadline: _Deadline | None = None

    def _socket(self) -> socket.socket:
        assert self.deadline is not None  # set by Sender before each request
        sock = socket.create_connection((self.address, self.port), self.deadline.remaining())
        # As http.client's own connect does: headers and body go out in separate writes, and on a kept-alive
        # connection Nagle's algorithm would hold the body until the receiver's delayed ACK (40 ms a request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.deadline.watch(sock)

    def connect(self) -> None:
        self.sock = self._socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection, http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target, timeout, context=self.tls)

    def connect(self) -> None:
        self.sock = self.tls.wrap_socket(self._socket(), server_hostname=self.host)


KEEP_ALIVE_BODY_LIMIT = 64 * 1024  # a longer answer body is not read to the end: its connection is closed instead
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Sender:
    """Sends attempts one after another, keeping each receiver's connection open between them (HTTP/1.1
    keep-alive), as a batch of deliveries does. Every attempt resolves and checks its target again and gets its
    own deadline; a connection is reused only to the same checked address. Use as a context manager."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, int, str], _PinnedHTTPConnection] = {}

    def __enter__(self) -> "Sender":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for connection in self._open.values():
            connection.close()
        self._open.clear()

    def post(self, *, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """POSTs `body` and reports the answer; never raises for network or receiver failures."""
        started = time.monotonic()

        def elapsed() -> int:
            return round((time.monotonic() - started) * 1000)

        try:
            target = target_resolve(url)
        except TargetRefused as exc:
            return Answer(status_code=None, latency_ms=elapsed(), error=f"{exc.code}: {exc}"[:300])
        deadline = _Deadline(max(timeout - (time.monotonic() - started), 0.001))
        try:
            status, excerpt = self._exchange(target, deadline, body, headers, timeout)
            if deadline.expired:
                raise TimeoutError(f"timed out: no complete answer within {timeout:g} s")
            return Answer(status_code=status, latency_ms=elapsed(), excerpt=excerpt)
        except Exception as exc:  # noqa: BLE001 (whatever the receiver or the network did is this attempt's failure)
            self._forget(target)
            if deadline.expired and not isinstance(exc, TimeoutError):
                exc = TimeoutError(f"timed out: no complete answer within {timeout:g} s")
            return Answer(status_code=None, latency_ms=elapsed(), error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            deadline.cancel()

    def _exchange(
        self, target: Target, deadline: _Deadline, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, str]:
        key = (target.scheme, target.host, target.port, target.address)
        reused = key in self._open
        if not reused:
            pinned = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
            self._open[key] = pinned(target, timeout)
        connection = self._open[key]
        connection.deadline = deadline
        if connection.sock is not None:
            deadline.watch(connection.sock)
        try:
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Content-Type": "application/json", "User-Agent": "loyalty-webhooks/1"},
            )
            response = connection.getresponse()
        except STALE:
            if not reused:
                raise
            self._forget(target)  # the receiver closed the idle connection: once more on a new one
            return self._exchange(target, deadline, body, headers, timeout)
        read = response.read(KEEP_ALIVE_BODY_LIMIT)
        if response.will_close or not response.isclosed():
            self._forget(target)
        return response.status, read[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]

    def _forget(self, target: Target) -> None:
        connection = self._open.pop((target.scheme, target.host, target.port, target.address), None)
        if connection is not None:
            connection.close()


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One attempt on a connection of its own (see Sender)."""
    with Sender() as sender:
        return sender.post(url=url, body=body, headers=headers, timeout=timeout)
