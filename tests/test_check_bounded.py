"""``ssg-dmi check --url`` against hostile servers on loopback (issue 8, item 12): it ends
within ``--time-limit`` plus a little, and its memory stays bounded, whatever the server
does — a body dripped one byte every 2 s, headers dripped the same way, a page farm of
20,000 links and images per page."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ssg_dmi.audit.crawl import MAX_PAGE_BYTES
from ssg_dmi.audit.crawl_state import MAX_FINDINGS
from ssg_dmi.audit.findings import CheckReport as Report
from ssg_dmi.audit.report_formats import format_text
from ssg_dmi.audit.served import check_url
from ssg_dmi.settings import load_settings

from .servers import threaded

SETTINGS = load_settings({"cache": False})
SLACK = 3.0  # seconds past the time limit a check may take to wind down
LINKS = 20_000


class _Server(ThreadingHTTPServer):
    block_on_close = False  # a dripping handler must not hold up the test's end


@contextmanager
def serve(respond: Callable[[BaseHTTPRequestHandler, threading.Event], None]) -> Iterator[str]:
    """A loopback server answering every GET with ``respond``; its base URL."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with contextlib.suppress(OSError):  # the check hung up on us: the point
                respond(self, stop)

        def log_message(self, *args: Any) -> None:
            pass

    with threaded(_Server(("127.0.0.1", 0), Handler)) as url:
        try:
            yield url
        finally:
            stop.set()  # before the shutdown: dripping handlers end


def send(handler: BaseHTTPRequestHandler, body: bytes, kind: str = "text/html") -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def not_found(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(404)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def drip(handler: BaseHTTPRequestHandler, stop: threading.Event, data: bytes) -> None:
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        handler.wfile.flush()
        if stop.wait(2.0):
            return


def slow_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Headers at once, then the body one byte every 2 s."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.flush()
    drip(handler, stop, b"<html>" + b" " * 99_994)


def slow_headers(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """The status line, then the headers one byte every 2 s."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    drip(handler, stop, b"X-Filler: " + b"a" * 10_000 + b"\r\n\r\n")


def timed(**kwargs: Any) -> Callable[[str], tuple[Report, float]]:
    def run(url: str) -> tuple[Report, float]:
        start = time.monotonic()
        report = check_url(url, SETTINGS, **kwargs)
        return report, time.monotonic() - start

    return run


@pytest.mark.parametrize("respond", [slow_body, slow_headers])
def test_a_dripping_server_cannot_stretch_the_time_limit(
    respond: Callable[[BaseHTTPRequestHandler, threading.Event], None],
) -> None:
    with serve(respond) as url:
        report, took = timed(time_limit=3)(url)
    assert took <= 3 + SLACK, took
    codes = [(f.code, f.severity) for f in report.findings]
    assert codes == [("crawl-truncated", "error")], report.findings  # nothing was read
    assert "time limit of 3 s was reached" in report.findings[0].message


def test_each_response_has_its_own_limit() -> None:
    """A dripping page is cut at the fetch limit and named; the rest is still checked."""

    def site(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        if handler.path == "/":
            send(handler, b'<html><a href="/slow.html">s</a><a href="/ok.html">o</a></html>')
        elif handler.path == "/slow.html":
            slow_body(handler, stop)
        elif handler.path == "/ok.html":
            send(handler, b"<html><p>fine</p></html>")
        else:
            not_found(handler)

    with serve(site) as url:
        report, took = timed(time_limit=30, fetch_time=1.5)(url)
    assert took < 10, took
    failed = [f for f in report.findings if f.code == "fetch-failed"]
    assert [(f.path, f.severity) for f in failed] == [(url + "slow.html", "error")]
    assert "no complete response within 1.5 s" in failed[0].message
    assert url + "ok.html" in report.checked
    assert not any(f.code == "crawl-truncated" for f in report.findings)


def farm(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Every page links 20,000 new pages and shows 20,000 new images, each with a srcset
    and no size; every image is a tiny untagged PNG."""
    if handler.path.startswith("/i/"):
        send(handler, PNG, "image/png")
        return
    if not (handler.path == "/" or handler.path.startswith("/p/")):
        not_found(handler)
        return
    n = abs(hash(handler.path)) % 10**9
    links = "".join(f'<a href="/p/{n}-{k}.html">{k}</a>' for k in range(LINKS))
    images = "".join(f'<img src="/i/{n}-{k}.png" srcset="/i/{n}-{k}.png 1w">' for k in range(LINKS))
    send(handler, f"<html><body>{links}{images}</body></html>".encode())


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


def test_a_page_farm_keeps_time_and_memory_bounded() -> None:
    with serve(farm) as url:
        tracemalloc.start()
        try:
            report, took = timed(time_limit=6)(url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert took <= 6 + SLACK, took
    assert peak < 40 << 20, f"peak {peak / 1e6:.0f} MB"  # 60 MB and growing, unbounded
    pages = [u for u in report.checked if u.endswith(".html") or u == url]
    assert 1 <= len(pages) <= 500
    assert len(report.findings) <= MAX_FINDINGS + 2
    truncated = [f for f in report.findings if f.code == "crawl-truncated"]
    said = " ".join(f.message for f in truncated)
    assert "stopped early" in said and "more errors not listed" in said, said
    assert format_text(report).count("\n") <= MAX_FINDINGS + 3


def test_max_images_applies_during_the_crawl() -> None:
    """Only --max-images image URLs are ever kept or fetched, and the cut is one line."""
    with serve(farm) as url:
        report = check_url(url, SETTINGS, max_pages=2, max_images=5, time_limit=20)
    images = [u for u in report.checked if "/i/" in u]
    assert len(images) == 5
    (cut,) = [f for f in report.findings if f.code == "crawl-truncated" and "stopped" in f.message]
    assert cut.severity == "warning" and "more than --max-images 5 images" in cut.message
    assert "more linked pages than --max-pages 2" in cut.message


def test_an_endless_body_is_cut_at_the_size_cap() -> None:
    """A page with no length that never ends: read up to the cap, then named."""

    def endless(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        if handler.path != "/":
            not_found(handler)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"<p>" + b"x" * (1 << 16)
        while not stop.is_set():
            handler.wfile.write(block)

    with serve(endless) as url:
        report, took = timed(time_limit=20)(url)
    assert took < 10, took
    failed = [(f.path, f.message) for f in report.findings if f.code == "fetch-failed"]
    assert failed == [(url, f"over {MAX_PAGE_BYTES} bytes")]


def test_a_tls_handshake_dripped_byte_by_byte_is_cut_too() -> None:
    """https: the server answers the ClientHello with a record header announcing 16 kB,
    then one byte every 2 s; each read is quick, the handshake never ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_tls() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.recv(4096)
                conn.sendall(b"\x16\x03\x03\x40\x00")
                while not stop.wait(2.0):
                    conn.sendall(b"\x00")

    threading.Thread(target=serve_tls, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        report, took = timed(time_limit=3)(url)
    finally:
        stop.set()
        listener.close()
    assert took <= 3 + SLACK, took
    assert [f.code for f in report.findings] == ["crawl-truncated"]
