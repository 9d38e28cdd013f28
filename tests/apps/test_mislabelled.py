"""An event stream under the wrong Content-Type is still judged for what it is."""

from __future__ import annotations

import pytest

from harness.conformance import Target, capture_suite, judge
from harness.load.payloads import RequestSpec
from harness.servers.embedded import EmbeddedMock
from tests.apps.test_apps import SUITE, check_app, results

pytestmark = pytest.mark.slow  # app servers in subprocesses, checked end to end

#: Checks that read the events: each must judge the body, not skip it.
JUDGED = ("framing.utf8", "framing.unterminated-event", "openai.json", "openai.done",
          "openai.finish-reason-once", "sdk.openai", "streaming.incremental")  # fmt: skip


@pytest.mark.parametrize(
    ("route", "label"), [("plain", "text/plain"), ("unlabelled", "missing")], ids=str
)
def test_a_mislabelled_openai_stream_is_a_warn_and_its_body_is_judged(
    apps: dict[str, str], upstream: EmbeddedMock, route: str, label: str
) -> None:
    report = check_app(
        apps["mislabelled_app"] + f"/{route}/v1/chat/completions", upstream, request="openai-chat"
    )
    found = results(report)
    assert report.dialect == "openai-chat"
    status, message = found["http.content-type"]
    assert status == "WARN"
    assert label in message
    assert "judged as the event stream it holds" in message
    for check_id in JUDGED:
        assert found[check_id][0] == "pass", (check_id, found[check_id])
    assert not report.failed


def test_a_get_endpoint_without_placeholders_is_checked_on_its_one_url(
    apps: dict[str, str], upstream: EmbeddedMock
) -> None:
    url = apps["sse_starlette_app"] + "/stream?q=hello"
    spec = RequestSpec(request="json", method="GET", url=url)
    report = judge(capture_suite(Target(spec=spec), SUITE))
    sent = {r["request"].split(" (")[0] for r in report.requests}
    assert sent == {"GET /stream"}  # the one URL (its path shown), for every step
    found = results(report)
    assert report.dialect == "generic"
    assert found["framing.unterminated-event"][0] == "pass"
    assert found["errors.invalid-rejected"][0] == "skip"  # a GET has no body to spoil
    assert not report.failed
