"""A real browser's EventSource, on a page from another origin, reads the mock's
tutorial streams whole (CORS included)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from harness.dialects.decode import decode_body
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments

PAGE = """<!doctype html><meta charset="utf-8"><title>EventSource</title><pre id="log"></pre>
<script>
const MOCK = %(mock)s;
function collect(path) {
  return new Promise((resolve) => {
    const source = new EventSource(MOCK + path);
    const got = {data: [], types: [], ids: [], error: false};
    const finish = () => { source.close(); resolve(got); };
    const onEvent = (e) => {
      got.data.push(e.data); got.types.push(e.type); got.ids.push(e.lastEventId);
      if (e.data === "[DONE]" || e.type === "complete") finish();
    };
    source.onmessage = onEvent;
    for (const t of ["start", "content", "complete"]) source.addEventListener(t, onEvent);
    source.onerror = () => { got.error = true; finish(); };
  });
}
Promise.all([collect(%(content)s), collect(%(events)s)]).then((results) => {
  document.getElementById("log").textContent = JSON.stringify(results);
  return fetch("/report", {method: "POST", body: JSON.stringify(results)});
});
</script>"""

CONTENT = "/tutorial/content?prompt=hello%20browser"
EVENTS = "/tutorial/events?prompt=hello%20browser"


class PageOrigin:
    """A second origin that serves the page and takes the browser's report."""

    def __init__(self, mock_url: str) -> None:
        self.mock_url = mock_url
        self.report: Any = None
        self.reported = threading.Event()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PageOrigin:
        self._thread.start()
        assert self._ready.wait(10), "the page server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)  # type: ignore[union-attr]
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        async def page(request: web.Request) -> web.Response:
            body = PAGE % {"mock": json.dumps(self.mock_url), "content": json.dumps(CONTENT),
                           "events": json.dumps(EVENTS)}  # fmt: skip
            return web.Response(text=body, content_type="text/html")

        async def report(request: web.Request) -> web.Response:
            self.report = json.loads(await request.text())
            self.reported.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/", page)
        app.router.add_post("/report", report)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=15)) as running:
        yield running


def expected(mock: EmbeddedMock, path: str) -> dict[str, Any]:
    body = httpx.get(mock.base_url + path, timeout=10).content
    return decode_body(body, dialect="generic")


def test_browser_eventsource_reads_tutorial_streams_from_another_origin(mock, chromium) -> None:
    with PageOrigin(mock.base_url) as origin:
        chromium(origin.url)
        assert origin.reported.wait(60), "the browser sent no report"
    content, events = origin.report
    assert content["error"] is False
    assert content["data"][-1] == "[DONE]"
    browser_text = "".join(json.loads(d)["content"] for d in content["data"][:-1])
    assert browser_text == expected(mock, CONTENT)["text"]
    assert len(content["data"]) == 16  # 15 tokens and [DONE]

    assert events["error"] is False
    assert events["types"][0] == "start"
    assert events["types"][-1] == "complete"
    content_events = [i for i, t in enumerate(events["types"]) if t == "content"]
    assert len(content_events) == 15
    ids = [events["ids"][i] for i in content_events]
    assert all(ids)
    assert len(set(ids)) == 15  # every content event carried its own id
    browser_events_text = "".join(json.loads(events["data"][i])["content"] for i in content_events)
    assert browser_events_text == expected(mock, EVENTS)["text"]
    complete = json.loads(events["data"][-1])
    assert complete["finish_reason"] == "stop"


def test_browser_refuses_the_stream_when_the_mock_allows_another_origin(chromium) -> None:
    other = ["--cors-origin", "http://127.0.0.1:9"]  # not the page's origin
    with (
        embedded_mock(mock_arguments(ttft_ms=20, itl_ms=5, tokens=5, extra=other)) as strict,
        PageOrigin(strict.base_url) as origin,
    ):
        chromium(origin.url)
        assert origin.reported.wait(60), "the browser sent no report"
    content, events = origin.report
    assert content["error"] is True
    assert content["data"] == []
    assert events["error"] is True
