"""Hand-written OpenAI endpoints, one bug each: every one is flagged at the check meant
for it, and ``--fail-on warn`` fails every one of them but the clean twin."""

from __future__ import annotations

import pytest

from harness.conformance import SuiteSettings, Target, check_endpoint
from harness.load.payloads import RequestSpec
from tests.apps.test_apps import results

pytestmark = pytest.mark.slow  # app servers in subprocesses, checked end to end

SUITE = SuiteSettings(
    streams=2, max_tokens=8, long_tokens=60, burst=3, timeout_s=15.0, disconnect_wait_s=2.0
)
#: bug -> the check meant for it and the severity it should give
EXPECTED = {
    "buffered": ("streaming.incremental", "FAIL"),
    "no-done": ("openai.done", "WARN"),
    "text-plain": ("http.content-type", "WARN"),
    "broken-json": ("openai.json", "FAIL"),
    "finish-twice": ("openai.finish-reason-once", "WARN"),
    "no-finish": ("openai.finish-reason-once", "FAIL"),
    "changing-id": ("openai.same-identity", "WARN"),
    "no-usage": ("openai.usage-chunk", "WARN"),
    "unterminated": ("framing.unterminated-event", "FAIL"),
    "accepts-invalid": ("errors.invalid-rejected", "FAIL"),
}


def check(apps: dict[str, str], bug: str, fail_on: str = "warn"):
    url = f"{apps['buggy_openai_app']}/{bug}/v1/chat/completions"
    return check_endpoint(Target(spec=RequestSpec(url=url)), SUITE, fail_on=fail_on)


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_each_bug_is_flagged_at_its_check_and_fails_a_strict_gate(
    apps: dict[str, str], bug: str
) -> None:
    report = check(apps, bug)
    found = results(report)
    check_id, severity = EXPECTED[bug]
    assert found[check_id][0] == severity, (bug, found[check_id])
    assert report.failed  # --fail-on warn: exit 1
    if bug == "text-plain":  # judged as the event stream it is
        assert found["openai.json"][0] == "pass"
        assert found["sdk.openai"][0] == "pass"


def test_the_clean_twin_passes_even_a_strict_gate(apps: dict[str, str]) -> None:
    report = check(apps, "clean")
    flagged = {k: v for k, v in results(report).items() if v[0] in ("FAIL", "WARN", "error")}
    assert flagged == {}
    assert not report.failed


def test_a_connection_dropped_after_an_unhandled_500_is_its_own_note_not_an_unreachable_target(
    apps: dict[str, str],
) -> None:
    report = check(apps, "crashes-on-invalid", fail_on="fail")
    found = results(report)
    assert found["errors.invalid-rejected"][0] == "WARN"  # refused, but with a 500, not a 400
    status, message = found["http.silent-close"]
    assert status == "INFO", found["http.silent-close"]
    assert "without 'Connection: close'" in message
    retried = [r for r in report.requests if r.get("retried")]
    assert retried
    assert all(r["status"] is not None for r in retried)  # answered on the second attempt


@pytest.mark.parametrize(
    ("bug", "client", "status", "says"),
    [
        ("gzip-flushed", None, "INFO", "flushed as it went"),
        ("gzip-held", None, "WARN", "arrived in one burst"),
        ("gzip-held", "minimal", "pass", ""),  # no compression asked, none sent
    ],
)
def test_compression_a_client_asks_for_is_judged_by_whether_it_holds_tokens_back(
    apps: dict[str, str], bug: str, client: str | None, status: str, says: str
) -> None:
    url = f"{apps['buggy_openai_app']}/{bug}/v1/chat/completions"
    target = Target(spec=RequestSpec(url=url), client_headers=client)
    found = results(check_endpoint(target, SUITE))
    assert found["http.no-content-encoding"][0] == status, found["http.no-content-encoding"]
    assert says in found["http.no-content-encoding"][1]
    assert found["openai.json"][0] == "pass"  # decoded and judged
