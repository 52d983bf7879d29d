"""`gans serve`: a local web explorer for runs and checkpoints (docs/explorer.md).

app.py holds the routes, explorer.py the operations on tensors, library.py what may be served,
jobs.py background work, static/ the page; backend.py is the one door to the rest of gans.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Optional

from gans.serve.backend import GansError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts, so a port in use is a one-line
    error and port 0 (any free port) still prints the real URL."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise GansError(f"--host {host}: not an address of this machine; e.g. 127.0.0.1") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise GansError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
                        "--port (0 = any free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def make_server(paths: list, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"):
    """(uvicorn server, its bound socket); `server.run(sockets=[sock])` serves until stopped."""
    try:
        import uvicorn
    except ImportError:
        raise GansError("gans serve needs uvicorn and starlette: pip install uvicorn starlette "
                        "(or reinstall gans)") from None
    from gans.serve.app import create_app

    loopback = is_loopback(host)
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"] if loopback else None
    app = create_app(paths, allowed_hosts=hosts)
    sock = bind(host, port)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on")
    return uvicorn.Server(config), sock


def serve(paths: list, host: str = "127.0.0.1", port: int = 8000,
          out=None) -> Optional[int]:
    out = out or sys.stdout
    if not is_loopback(host):
        print(f"warning: --host {host} is not loopback: anyone who can reach this machine on "
              f"port {port} can browse these runs and use its CPU", file=sys.stderr)
    server, sock = make_server(paths, host, port)
    print(f"gans serve: {url_of(sock)}  (Ctrl-C stops)", file=out, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
