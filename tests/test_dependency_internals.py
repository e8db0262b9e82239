"""Iris uses a few private attributes of its dependencies, for speed, and pins those dependencies to
the minor versions it was tested with (pyproject.toml). These tests fail loudly, naming the place
to review, when a version in that range no longer has them."""

from __future__ import annotations

import inspect

import aiohttp
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_writer import _serialize_headers
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CollectorRegistry, Histogram

from proxy.imagegen.reply import SEPARATE_FROM, ImageResponse
from proxy.web.metrics import BUCKETS, Metrics


def test_aiohttp_still_lets_a_response_send_its_headers_before_the_body():
    where = "proxy/imagegen/reply.py sets it; review it before raising the aiohttp bound"
    assert "_send_headers_immediately" in vars(web.StreamResponse), where
    assert vars(web.Response)["_send_headers_immediately"] is False, where
    assert "_send_headers_immediately" in inspect.getsource(web.StreamResponse), where
    assert ImageResponse(b"x" * SEPARATE_FROM, {})._send_headers_immediately is True
    assert ImageResponse(b"x" * (SEPARATE_FROM - 1), {})._send_headers_immediately is False


def test_prometheus_histograms_still_keep_one_value_per_bucket_and_a_sum():
    where = "proxy/web/metrics.py adds observations through them; review it before raising the bound"
    child = Histogram("probe_seconds", "probe", ["route"], buckets=BUCKETS,
                      registry=CollectorRegistry()).labels("x")
    assert len(child._buckets) == len(BUCKETS) + 1, where
    assert all(hasattr(bucket, "inc") for bucket in child._buckets), where
    assert hasattr(child._sum, "inc"), where


def test_a_batch_of_observations_reads_as_the_same_observations_one_by_one():
    batched, single = Metrics(), Histogram("iris_http_request_duration_seconds", "x", ["route"],
                                           buckets=BUCKETS, registry=CollectorRegistry())
    for seconds in (0.0004, 0.003, 0.003, 0.2, 7.0, 500.0):
        batched.request("r", "GET", 200, seconds)
        single.labels("r").observe(seconds)
    batched.flush()
    ours = {s.labels.get("le"): s.value for s in batched.latency.collect()[0].samples if s.name.endswith(
        ("_bucket", "_count"))}
    theirs = {s.labels.get("le"): s.value for s in single.collect()[0].samples if s.name.endswith(
        ("_bucket", "_count"))}
    assert ours == theirs


async def test_aiohttp_still_has_what_the_connection_bounds_use():
    where = "proxy/web/protocol.py uses it; review it before raising the aiohttp bound"

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    server = web.Server(handler, keepalive_timeout=7.0)
    assert server._kwargs == {"keepalive_timeout": 7.0}, where
    assert server._loop is not None, where
    for name in ("_waiter", "_messages", "_lingering_time", "_loop"):
        assert name in RequestHandler.__slots__ or name in RequestHandler.__mro__[1].__slots__, (name, where)
    source = inspect.getsource(RequestHandler)
    assert "self._lingering_time" in source and "self._waiter = loop.create_future()" in source, where
    assert "def handle_error" in source and "_make_error_handler" in source, where


def test_aiohttp_still_has_what_answering_a_request_where_it_was_parsed_uses():
    where = "proxy/web/protocol.py (IrisRequestHandler._answer_at_once) uses it; review it before raising the bound"
    for name in ("_keepalive_handle", "_next_keepalive_close_time", "_keepalive_timeout", "_manager",
                 "_logging_enabled", "access_logger", "_request_count", "_close", "_force_close"):
        assert any(name in getattr(cls, "__slots__", ()) for cls in RequestHandler.__mro__), (name, where)
    assert callable(RequestHandler._process_keepalive) and "peername" in vars(RequestHandler), where
    source = inspect.getsource(RequestHandler)
    assert "if self._waiter and not self._waiter.done():" in source, where  # idle: closed at the keep-alive time
    assert "close_time = self._next_keepalive_close_time" in source, where  # the deadline is read when it fires
    assert "waiter.set_result(None)" in source and "self._messages.append((msg, payload))" in source, where
    # requests remembered parsed (proxy/web/parsed.py): the parser reads what data_received hands it,
    # and, after an upgrade request (never one of a connection that uses them), what followed it
    assert "if self._force_close or self._close:\n            return" in source, where  # closing: nothing read
    assert source.count("self._parser.feed_data(") == 2 and "feed_data(" in inspect.getsource(
        RequestHandler.data_received) and "self._parser.feed_data(\n                        self._message_tail" in source, where
    writer = "proxy/imagegen/lane.py writes the header block with it; review it before raising the bound"
    assert _serialize_headers("HTTP/1.1 200 OK", {"A": "b"}) == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", writer
    with pytest.raises(ValueError):
        _serialize_headers("HTTP/1.1 200 OK", {"A": "b\r\nInjected: yes"})
    assert len(rfc822_formatted_time()) == 29 and SERVER_SOFTWARE.startswith("Python/"), writer


def test_aiohttp_still_has_what_the_send_timeout_uses():
    """The connection's send timeout (IrisRequestHandler) reads whether writing is paused, and looks
    at the transport after every answer aiohttp sends, in the method it extends."""
    where = "proxy/web/protocol.py (the send timeout) uses it; review it before raising the aiohttp bound"
    assert "_paused" in BaseProtocol.__slots__, where
    assert "self._paused = True" in inspect.getsource(BaseProtocol.pause_writing), where
    assert "self._paused = False" in inspect.getsource(BaseProtocol.resume_writing), where
    finish = RequestHandler.finish_response
    assert inspect.iscoroutinefunction(finish), where
    assert list(inspect.signature(finish).parameters) == ["self", "request", "resp", "start_time"], where
    assert "await self.finish_response(" in inspect.getsource(RequestHandler._handle_request), where


def test_aiohttp_still_waits_for_a_free_connection_in_the_method_irises_connector_extends():
    """proxy/upstream/transport.py's ``_Connector`` learns there when a call waits in Iris's own pool
    (where aiohttp sends its connection_queued signals)."""
    where = "proxy/upstream/transport.py extends it; review it before raising the aiohttp bound"
    method = aiohttp.TCPConnector._wait_for_available_connection
    assert list(inspect.signature(method).parameters) == ["self", "key", "traces"], where
    assert "send_connection_queued_start" in inspect.getsource(method), where
    assert "_wait_for_available_connection(" in inspect.getsource(aiohttp.BaseConnector.connect), where
