"""Redirects: by default every transport answers with the 3xx itself; when told to follow,
it follows within the request's origin only, so keys and headers never reach another one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.load.exchange import run_exchange
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.transports import TRANSPORTS, HttpRequest, Timeouts, make_transport
from harness.transports.redirects import MAX_REDIRECTS, redirected
from tests.transports.servers import SSE_HEAD, Conn, chat_events, chunked, raw_server, run

TIMEOUTS = Timeouts(connect_s=5, ttft_s=10, idle_s=10, total_s=20)
BODY = b'{"model": "m", "stream": true}'
SECRET = "sk-redirect-secret"
STREAM = SSE_HEAD + chunked(*chat_events(["one", "two"]))
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno route!"
REASONS = {301: "Moved Permanently", 302: "Found", 303: "See Other",
           307: "Temporary Redirect", 308: "Permanent Redirect"}  # fmt: skip


class Seen:
    """A request as a server received it."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        line, *fields = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = line.split(" ")
        self.headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def redirect(status: int, location: str) -> bytes:
    return b"HTTP/1.1 %d %s\r\nLocation: %s\r\nContent-Length: 5\r\n\r\nmoved" % (
        status, REASONS[status].encode(), location.encode()
    )  # fmt: skip


Route = Callable[[Seen], bytes]


def serving(route: Route, seen: list[Seen]) -> Callable[[Conn], object]:
    """A handler that answers each request on a connection with ``route(request)``."""

    async def handler(conn: Conn) -> None:
        while (raw := await conn.request()) is not None:
            request = Seen(raw)
            seen.append(request)
            await conn.send(route(request))

    return handler


def post(url: str) -> HttpRequest:
    headers = {"x-api-key": SECRET, "x-custom": "custom-value", "content-type": "application/json"}
    return HttpRequest(method="POST", url=url, headers=headers, body=BODY)


async def exchange(name: str, request: HttpRequest, **options: bool) -> RequestRecord:
    record = RequestRecord(request_id="r")
    async with make_transport(name, timeouts=TIMEOUTS, connections=2, **options) as transport:
        await run_exchange(transport, request, record, dialect=None, timeouts=TIMEOUTS)
    return record


# -- not followed by default ------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_redirect_is_the_response_by_default(name: str, status: int) -> None:
    async def go() -> tuple[int, str | None, RequestRecord, list[Seen], list[Seen]]:
        here: list[Seen] = []
        there: list[Seen] = []
        async with raw_server(serving(lambda _: NOT_FOUND, there)) as other:
            elsewhere = other.url("/v1/messages")
            async with raw_server(serving(lambda _: redirect(status, elsewhere), here)) as origin:
                transport = make_transport(name, timeouts=TIMEOUTS, connections=2)
                async with transport, transport.stream(post(origin.url("/v1"))) as response:
                    status_seen = response.status
                    location = response.headers.get("location")
                    _ = [data async for _, data in response.chunks()]
                record = await exchange(name, post(origin.url("/v1")))
        return status_seen, location, record, here, there

    status_seen, location, record, here, there = run(go())
    assert status_seen == status
    assert location is not None
    assert location.endswith("/v1/messages")
    assert record.status == status
    assert record.outcome is Outcome.ERROR
    assert record.error_kind is ErrorKind.HTTP_STATUS
    assert f"HTTP {status}" in (record.error_message or "")
    assert [seen.method for seen in here] == ["POST", "POST"]
    assert there == []  # nothing, and no key, went to the other origin


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_same_origin_redirect_is_not_followed_by_default(name: str) -> None:
    async def go() -> tuple[RequestRecord, list[Seen]]:
        seen: list[Seen] = []

        def route(request: Seen) -> bytes:
            return STREAM if request.target == "/v2" else redirect(307, "/v2")

        async with raw_server(serving(route, seen)) as origin:
            return await exchange(name, post(origin.url("/v1"))), seen

    record, seen = run(go())
    assert record.status == 307
    assert record.error_kind is ErrorKind.HTTP_STATUS
    assert [request.target for request in seen] == ["/v1"]


# -- followed within the origin ---------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_307_and_308_repeat_the_request_with_its_method_body_and_headers(
    name: str, status: int
) -> None:
    async def go() -> tuple[RequestRecord, list[Seen]]:
        seen: list[Seen] = []

        def route(request: Seen) -> bytes:
            return STREAM if request.target == "/v2/chat?x=1" else redirect(status, "/v2/chat?x=1")

        async with raw_server(serving(route, seen)) as origin:
            record = await exchange(name, post(origin.url("/v1")), follow_redirects=True)
            return record, seen

    record, seen = run(go())
    assert record.outcome is Outcome.OK, record.error_message
    assert record.status == 200
    assert len(record.token_times_ns) == 2
    first, second = seen
    assert (first.method, first.target) == ("POST", "/v1")
    assert (second.method, second.target, second.body) == ("POST", "/v2/chat?x=1", BODY)
    assert second.headers["x-api-key"] == SECRET
    assert second.headers["x-custom"] == "custom-value"


@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_301_302_and_303_turn_a_post_into_a_get_without_a_body(name: str, status: int) -> None:
    async def go() -> tuple[RequestRecord, list[Seen]]:
        seen: list[Seen] = []

        def route(request: Seen) -> bytes:
            return STREAM if request.method == "GET" else redirect(status, "/v2")

        async with raw_server(serving(route, seen)) as origin:
            record = await exchange(name, post(origin.url("/v1")), follow_redirects=True)
            return record, seen

    record, seen = run(go())
    assert record.outcome is Outcome.OK, record.error_message
    assert [(request.method, request.target) for request in seen] == [
        ("POST", "/v1"),
        ("GET", "/v2"),
    ]
    assert seen[1].body == b""
    assert "content-length" not in seen[1].headers or seen[1].headers["content-length"] == "0"


@pytest.mark.parametrize("name", TRANSPORTS)
def test_an_absolute_location_within_the_origin_is_followed(name: str) -> None:
    async def go() -> tuple[RequestRecord, list[Seen]]:
        seen: list[Seen] = []

        async with raw_server(
            serving(lambda r: STREAM if r.target == "/v2" else redirect(308, target), seen)
        ) as origin:
            target = origin.url("/v2")
            return await exchange(name, post(origin.url("/v1")), follow_redirects=True), seen

    record, seen = run(go())
    assert record.outcome is Outcome.OK, record.error_message
    assert [request.target for request in seen] == ["/v1", "/v2"]


@pytest.mark.parametrize("status", [301, 307])
@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_redirect_to_another_origin_is_the_response_even_when_following(
    name: str, status: int
) -> None:
    async def go() -> tuple[list[RequestRecord], list[Seen], list[Seen]]:
        here: list[Seen] = []
        there: list[Seen] = []
        async with raw_server(serving(lambda _: STREAM, there)) as other:
            port = other.port
            elsewhere = [
                other.url("/v1"),  # another port
                f"http://localhost:{port}/v1",  # another host
                f"//localhost:{port}/v1",  # another host, scheme-relative
                "https://127.0.0.1/v1",  # another scheme (and port)
            ]
            locations = iter(elsewhere)

            async with raw_server(
                serving(lambda _: redirect(status, next(locations)), here)
            ) as origin:
                records = [
                    await exchange(name, post(origin.url("/v1")), follow_redirects=True)
                    for _ in elsewhere
                ]
        return records, here, there

    records, here, there = run(go())
    for record in records:
        assert record.status == status
        assert record.error_kind is ErrorKind.HTTP_STATUS
    assert len(here) == 4
    assert there == []  # no request, no key, no header went elsewhere


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_redirect_loop_ends_after_the_hop_limit_with_the_last_redirect(name: str) -> None:
    async def go() -> tuple[RequestRecord, list[Seen]]:
        seen: list[Seen] = []

        def route(request: Seen) -> bytes:
            return redirect(307, f"/hop{len(seen)}")

        async with raw_server(serving(route, seen)) as origin:
            return await exchange(name, post(origin.url("/v1")), follow_redirects=True), seen

    record, seen = run(go())
    assert record.status == 307
    assert record.error_kind is ErrorKind.HTTP_STATUS
    assert len(seen) == MAX_REDIRECTS + 1
    assert all(request.method == "POST" and request.body == BODY for request in seen)


# -- the rules --------------------------------------------------------------------------


def request(method: str, url: str = "http://api.test:8000/v1/chat") -> HttpRequest:
    return HttpRequest(method=method, url=url, headers={"Content-Length": "3", "X-Key": "k"},
                       body=b"abc" if method != "GET" else None)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "method", "then"),
    [(301, "POST", "GET"), (302, "POST", "GET"), (303, "POST", "GET"), (307, "POST", "POST"),
     (308, "POST", "POST"), (301, "PUT", "PUT"), (302, "PUT", "GET"), (303, "PUT", "GET"),
     (303, "HEAD", "HEAD"), (302, "HEAD", "HEAD"), (301, "GET", "GET")],
)  # fmt: skip
def test_the_method_after_a_redirect_is_what_httpx_does(
    status: int, method: str, then: str
) -> None:
    after = redirected(request(method), status, "/v2")
    assert after is not None
    assert after.method == then
    assert after.url == "http://api.test:8000/v2"
    assert after.headers["X-Key"] == "k"
    if then == method:
        assert after.body == request(method).body
        assert after.headers["Content-Length"] == "3"
    else:
        assert after.body is None
        assert "Content-Length" not in after.headers


@pytest.mark.parametrize(
    ("location", "url"),
    [("/v2?a=1", "http://api.test:8000/v2?a=1"), ("v2", "http://api.test:8000/v1/v2"),
     ("http://API.test:8000/x#frag", "http://API.test:8000/x"),
     ("//api.test:8000/y", "http://api.test:8000/y")],
)  # fmt: skip
def test_locations_within_the_origin_are_followed(location: str, url: str) -> None:
    after = redirected(request("POST"), 307, location)
    assert after is not None
    assert after.url == url


def test_a_default_port_is_the_same_origin_written_or_not() -> None:
    after = redirected(request("GET", "https://api.test/v1"), 302, "https://api.test:443/v2")
    assert after is not None
    assert after.url == "https://api.test:443/v2"


@pytest.mark.parametrize(
    "location",
    ["http://api.test:8001/v2", "https://api.test:8000/v2", "http://other.test:8000/v2",
     "//other.test:8000/v2", "http://api.test:notaport/v2", "ftp://api.test:8000/v2", "", "  "],
)  # fmt: skip
def test_locations_elsewhere_are_not_followed(location: str) -> None:
    assert redirected(request("POST"), 307, location) is None


@pytest.mark.parametrize("status", [200, 204, 300, 304, 305, 306, 404])
def test_other_statuses_are_not_redirects(status: int) -> None:
    assert redirected(request("POST"), status, "/v2") is None
    assert redirected(request("POST"), 307, None) is None
