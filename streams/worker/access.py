"""Who may read a worker's endpoints: with ``METASTREAM_ACCESS_TOKEN`` set, the Prometheus metrics
and the status page answer only requests that carry it (``Authorization: Bearer <token>``, as
Prometheus' ``authorization`` scrape setting sends it; the status page also takes ``?token=`` for a
browser), and refuse the others with 401. Without a token they are open, bound to loopback by
default.

>>> authorised("Bearer s3cret", "", "s3cret"), authorised("", "s3cret", "s3cret"), authorised("Bearer x", "", "s3cret")
(True, True, False)
>>> authorised("", "", "")
True
"""

from __future__ import annotations

import hmac
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from prometheus_client import CollectorRegistry, make_wsgi_app, start_http_server

REFUSAL = b"this endpoint needs the worker's access token: Authorization: Bearer <METASTREAM_ACCESS_TOKEN>\n"


def authorised(header: str, query_token: str, token: str) -> bool:
    """Whether a request with this ``Authorization`` header (or ``?token=``) may read, compared in
    constant time; everything may when no token is set."""
    if not token:
        return True
    offered = header[len("Bearer "):] if header.startswith("Bearer ") else query_token
    return hmac.compare_digest(offered.encode(), token.encode())


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - scrapes are not the worker's log
        pass


def serve_metrics(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1", token: str = "") -> None:
    """Serve ``registry`` at ``/metrics`` on a daemon thread; behind ``token`` when one is set."""
    if not token:
        start_http_server(port, addr=addr, registry=registry)
        return
    app = make_wsgi_app(registry)

    def guarded(environ, start_response):
        if authorised(environ.get("HTTP_AUTHORIZATION", ""), "", token):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
        return [REFUSAL]

    server = make_server(addr, port, guarded, _Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
