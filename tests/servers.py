"""Starting and stopping the servers the tests run on loopback (nginx, Caddy, python)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK), reason="nginx is not installed (apt-get install nginx-light)"
)

CADDY = shutil.which("caddy") or "/usr/bin/caddy"
needs_caddy = pytest.mark.skipif(
    not os.access(CADDY, os.X_OK), reason="Caddy is not installed (apt-get install caddy)"
)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def nginx_config(tmp: Path, site: Path, port: int, server: str = "") -> str:
    """An nginx.conf serving ``site`` on loopback ``port``, with ``server`` added to its server
    block. Everything nginx writes (pid, logs, temp folders) goes under ``tmp``, so it runs
    unprivileged, in the foreground and as one process that ``stop`` ends."""
    temps = " ".join(
        f"{d}_temp_path {tmp / d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 1; daemon off; master_process off;
pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{}}
http {{
  access_log off; include /etc/nginx/mime.types; {temps}
  server {{
    listen 127.0.0.1:{port}; root {site};
    {server}
  }}
}}
"""


def nginx_syntax(tmp: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t``: nginx's own verdict on ``conf`` and every file it includes."""
    cmd = [NGINX, "-t", "-p", str(tmp), "-c", str(conf), "-e", "stderr"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)


@contextmanager
def nginx(tmp: Path, site: Path, server: str = "") -> Iterator[str]:
    """nginx in the foreground on a free loopback port serving ``site`` (``server`` added to
    its server block, see ``nginx_config``); yields its base URL, ending in ``/``."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_config(tmp, site, port, server))
    check = nginx_syntax(tmp, conf)
    assert check.returncode == 0, check.stderr
    cmd = [NGINX, "-p", str(tmp), "-c", str(conf), "-e", "stderr"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_listening(proc, port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


def caddy_config(site: Path, port: int, site_block: str = "") -> str:
    """A Caddyfile serving ``site`` over plain HTTP on loopback ``port``, with ``site_block``
    added to its site block before ``file_server``: no admin endpoint, no automatic HTTPS
    (so no certificates and no network)."""
    return f"""{{
\tadmin off
\tauto_https off
}}
http://127.0.0.1:{port} {{
\tbind 127.0.0.1
\troot * {site}
\t{site_block}
\tfile_server
}}
"""


def caddy_env(tmp: Path) -> dict[str, str]:
    """Caddy's environment: its data and config folders (autosave, storage) under ``tmp``."""
    return {
        **os.environ,
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
    }


def caddy_validate(tmp: Path, caddyfile: Path) -> subprocess.CompletedProcess[str]:
    """``caddy validate``: Caddy's verdict on ``caddyfile`` and every file it imports (the
    config is adapted and every module provisioned, regexes compiled, nothing served)."""
    cmd = [CADDY, "validate", "--config", str(caddyfile), "--adapter", "caddyfile"]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=30, check=False, env=caddy_env(tmp)
    )


@contextmanager
def caddy(tmp: Path, site: Path, site_block: str = "") -> Iterator[str]:
    """Caddy (``caddy run``, in the foreground) on a free loopback port serving ``site``
    (``site_block`` added to its site block, see ``caddy_config``); yields its base URL,
    ending in ``/``."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    caddyfile = tmp / "Caddyfile"
    caddyfile.write_text(caddy_config(site, port, site_block))
    cmd = [CADDY, "run", "--config", str(caddyfile), "--adapter", "caddyfile"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=caddy_env(tmp)
    )
    try:
        wait_until_listening(proc, port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
needs_apache = pytest.mark.skipif(
    not os.access(APACHE, os.X_OK), reason="Apache is not installed (apt-get install apache2)"
)
APACHE_MODULES = ("mpm_event", "authz_core", "dir", "mime", "headers", "rewrite")


@contextmanager
def apache(tmp: Path, site: Path) -> Iterator[str]:
    """Apache (``apache2 -DFOREGROUND``) on a free loopback port serving ``site`` with its
    ``.htaccess`` files honoured; yields its base URL, ending in ``/``. As root, Apache's
    children run as ``nobody``: ``site`` and the folders above it must then be readable by
    all (see ``public_dir``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port, mods = free_port(), "/usr/lib/apache2/modules"
    loads = "\n".join(f"LoadModule {m}_module {mods}/mod_{m}.so" for m in APACHE_MODULES)
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    conf = tmp / "httpd.conf"
    conf.write_text(
        f"{loads}\n{user}ServerName localhost\nListen 127.0.0.1:{port}\n"
        f"PidFile {tmp}/httpd.pid\nErrorLog {tmp}/error.log\nTypesConfig /etc/mime.types\n"
        f"DefaultRuntimeDir {tmp}\nMutex file:{tmp}\nDocumentRoot {site}\n"
        f'<Directory "{site}">\n  AllowOverride All\n  Require all granted\n</Directory>\n'
    )
    check = subprocess.run(
        [APACHE, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=20, check=False
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [APACHE, "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until_listening(proc, port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


@contextmanager
def public_dir() -> Iterator[Path]:
    """A temporary folder everyone may read (a server's unprivileged workers included)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ssg-dmi-") as name:
        os.chmod(name, 0o755)
        yield Path(name)
