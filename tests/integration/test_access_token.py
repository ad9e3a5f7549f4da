"""With an access token set, the worker's metrics and status page answer only requests that carry
it (401 otherwise); Prometheus sends it as a bearer token, a browser as ``?token=``."""

import urllib.error
import urllib.request

from streams.worker.metrics import scrape


def _get(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_metrics_and_status_page_need_the_token(worker_factory):
    worker = worker_factory(METASTREAM_ACCESS_TOKEN="s3cret").start()  # start() reads metrics with the token
    metrics, page = f"http://127.0.0.1:{worker.port}/metrics", f"http://127.0.0.1:{worker.web_port}/status"
    assert _get(metrics) == 401 and _get(metrics, {"Authorization": "Bearer wrong"}) == 401
    assert scrape(worker.port) == {} and scrape(worker.port, token="s3cret")["metastream_worker_ready"] == 1.0
    assert _get(page) == 401 and _get(page + "?token=wrong") == 401
    assert _get(page + "?token=s3cret") == 200 and _get(page, {"Authorization": "Bearer s3cret"}) == 200


def test_without_a_token_the_metrics_are_open(worker_factory):
    worker = worker_factory().start()
    assert _get(f"http://127.0.0.1:{worker.port}/metrics") == 200
