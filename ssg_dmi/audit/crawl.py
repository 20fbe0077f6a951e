"""Bounded HTTP fetching for ``ssg-dmi check --url``: one origin, and limits a server cannot
stretch.

A socket timeout bounds one read, not a response: a server sending one byte every two
seconds, or its headers one byte at a time, never trips it. So every fetch has a deadline
(its own limit, and never past the whole check's), and a watchdog shuts the fetch's sockets
when it passes, whatever the fetch is blocked in (connect, TLS, headers, body); bodies are
read in chunks against a size cap; and a large body must hold the one "large" slot, so the
fetch threads together hold at most ``FETCH_THREADS * LARGE_BODY + MAX_IMAGE_BYTES`` bytes.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..version import __version__

MAX_PAGE_BYTES = 16 << 20
MAX_IMAGE_BYTES = 64 << 20
LARGE_BODY = 4 << 20  # past this, a body waits for the one large slot
FETCH_THREADS = 8
FETCH_SECONDS = 30.0  # the longest one response may take: connect, headers and body
READ_TIMEOUT = 10.0  # the longest one read may wait
CHUNK = 64 << 10
USER_AGENT = f"ssg-dmi-check/{__version__}"
SKIPPED = -1  # the status of a fetch not made, or cut short, because the time limit was reached


@dataclass
class Fetched:
    """One response (or why there is none); ``url`` is the final URL after redirects."""

    url: str
    status: int
    headers: Message
    body: bytes | None = None
    error: str | None = None


def origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) of a URL, lower-cased."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def clean(url: str) -> str:
    """Query and fragment dropped (a static host ignores them); the path percent-encoded as
    a browser sends it (spaces, non-ASCII), existing escapes kept."""
    parts = urlsplit(url.strip())
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Watch:
    """Shuts the sockets of one fetch once its deadline passes (a blocked read then ends)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def add(self, sock: socket.socket) -> socket.socket:
        """Watch ``sock``; shut at once when the deadline has already passed."""
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)
        return sock

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: that fetch is over
        sock.shutdown(socket.SHUT_RDWR)


def _watched(conn: http.client.HTTPConnection, watch: _Watch | None) -> None:
    if watch is not None:
        create: Callable[..., socket.socket] = getattr(conn, "_create_connection")  # noqa: B009
        setattr(conn, "_create_connection", lambda *a, **k: watch.add(create(*a, **k)))  # noqa: B010


class _Http(http.client.HTTPConnection):
    def __init__(self, host: str, *, watch: _Watch | None = None, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        _watched(self, watch)


class _Https(http.client.HTTPSConnection):
    def __init__(self, host: str, *, watch: _Watch | None = None, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        _watched(self, watch)


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Http, req, watch=self.watch)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Https, req, watch=self.watch)


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    def __init__(self, site: tuple[str, str]) -> None:
        self.site = site

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        if origin(newurl) != self.site:
            return None  # the 3xx is then the answer, reported as a failed fetch
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


class _TooLarge(Exception):
    """A body over its cap."""


class Crawler:
    """Fetches URLs of one origin within a time budget; never follows a redirect away."""

    def __init__(
        self,
        base: str,
        timeout: float,
        time_limit: float,
        fetch_seconds: float = FETCH_SECONDS,
    ) -> None:
        self.origin = origin(base)
        self.deadline = time.monotonic() + time_limit
        self.timeout = timeout
        self.fetch_seconds = fetch_seconds
        self.loopback = _is_loopback(urlsplit(base).hostname or "")
        self._large = threading.Semaphore(1)

    @property
    def out_of_time(self) -> bool:
        """Whether the time budget is spent."""
        return time.monotonic() >= self.deadline

    def get(
        self, url: str, body: Callable[[str], bool], limit: int, referer: str | None = None
    ) -> Fetched:
        """GET ``url`` (with a ``Referer`` when given); its body is read when
        ``body(content_type)`` says so, up to ``limit`` bytes. Never runs past the fetch limit
        nor the check's deadline."""
        now = time.monotonic()
        if now >= self.deadline:
            return Fetched(url, SKIPPED, Message(), error="the time limit was reached")
        watch = _Watch(min(self.deadline, now + self.fetch_seconds))
        handlers: list[urllib.request.BaseHandler] = [
            _SameOrigin(self.origin),
            _HttpHandler(watch),
            _HttpsHandler(watch),
        ]
        if self.loopback:
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        sent = {"User-Agent": USER_AGENT, **({"Referer": referer} if referer else {})}
        request = urllib.request.Request(url, headers=sent)
        got: Fetched
        try:
            with watch, opener.open(request, timeout=min(self.timeout, watch.deadline - now)) as r:
                data = self._read(r, limit, watch) if body(r.headers.get_content_type()) else None
                got = Fetched(r.geturl(), r.status, r.headers, data)
        except _TooLarge:
            return Fetched(url, 0, Message(), error=f"over {limit} bytes")
        except urllib.error.HTTPError as exc:
            exc.close()
            where = exc.headers.get("Location") if 300 <= exc.code < 400 else None
            why = f"HTTP {exc.code}" + (f", a redirect off the site to {where}" if where else "")
            got = Fetched(url, exc.code, exc.headers, error=why)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            got = Fetched(url, 0, Message(), error=f"cannot fetch ({reason})")
        if watch.fired:  # whatever came back was cut short: not the response
            if watch.deadline >= self.deadline:
                return Fetched(url, SKIPPED, Message(), error="the time limit was reached")
            why = f"no complete response within {self.fetch_seconds:g} s"
            return Fetched(url, 0, Message(), error=f"cannot fetch ({why})")
        return got

    def _read(self, resp: http.client.HTTPResponse, limit: int, watch: _Watch) -> bytes:
        """The body in chunks, never more than ``limit`` bytes; past ``LARGE_BODY`` only
        while holding the large slot."""
        length = resp.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > limit:
            raise _TooLarge
        data = bytearray()
        large = False
        try:
            while True:
                if len(data) >= LARGE_BODY and not large:
                    large = self._large.acquire(timeout=max(0.0, watch.deadline - time.monotonic()))
                    if not large:
                        raise TimeoutError("waited for the large-body slot until the deadline")
                chunk = resp.read(min(CHUNK, limit + 1 - len(data)))
                if not chunk:
                    return bytes(data)
                data += chunk
                if len(data) > limit:
                    raise _TooLarge
                if watch.fired or time.monotonic() >= watch.deadline:
                    raise TimeoutError("the fetch's deadline passed")
        finally:
            if large:
                self._large.release()
