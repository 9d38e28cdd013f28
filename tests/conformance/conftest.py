"""A fast mock in a child process, shared by the conformance tests, and a helper that
checks an endpoint in-process with a small suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.conformance import Report, SuiteSettings, Target, capture_suite, judge
from harness.load.payloads import RequestSpec
from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments

#: A small suite: enough tokens for every check to judge, a second or so per run.
SMALL = SuiteSettings(
    streams=1,
    max_tokens=8,
    long_tokens=24,
    long_s=5.0,
    burst=3,
    timeout_s=10.0,
    disconnect_wait_s=2.0,
)
#: The body template of the mock's tutorial endpoints, with the length placeholder.
TUTORIAL_BODY = '{"prompt": "{prompt}", "max_tokens": {max_tokens}}'


@pytest.fixture(scope="session")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=20, itl_ms=3, tokens=12)) as running:
        yield running


def check(
    url: str,
    *,
    request: str = "openai-chat",
    headers: tuple[tuple[str, str], ...] = (),
    body_json: str | None = None,
    method: str = "POST",
    settings: SuiteSettings = SMALL,
    truth_url: str | None = None,
    metrics: tuple[str, str] | None = None,
) -> Report:
    spec = RequestSpec(
        request=request,
        url=url,
        headers=headers,
        body_json=body_json,
        method=method,
        api_key="sk-secret-key",
    )
    target = Target(
        spec=spec,
        truth_url=truth_url,
        metrics_url=metrics[0] if metrics else None,
        metrics_gauge=metrics[1] if metrics else None,
    )
    return judge(capture_suite(target, settings), secrets=target.secrets)


def statuses(report: Report) -> dict[str, str]:
    return {result.check.id: result.status.value for result in report.results}


def findings_text(report: Report) -> str:
    return "\n".join(
        f"{r.check.id} {f.severity.value}: {f.message} | "
        + "; ".join(e.describe() for e in f.evidence)
        for r in report.results
        for f in r.findings
    )
