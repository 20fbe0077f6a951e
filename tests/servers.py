"""Starting and stopping the servers the tests run on loopback (nginx, python)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, seconds: float = 10) -> None:
    """Block until ``proc`` accepts connections on ``port``; fail with its stderr if it died."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server the test started, by its own process."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


@contextmanager
def threaded(server: HTTPServer) -> Iterator[str]:
    """Serve ``server`` (bound to loopback) from a thread; yields its base URL."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
