"""A real explorer server for the tests that need HTTP (a browser, concurrent clients)."""

import contextlib
import threading
import time


@contextlib.contextmanager
def running_server(paths: list):
    """A real server on a free loopback port, in a thread; stopped on exit."""
    from gans.serve import make_server, url_of

    server, sock = make_server([str(p) for p in paths], "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
