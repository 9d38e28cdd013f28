"""The catalogue of checks, in report order, and the judge that runs them over a suite."""

from __future__ import annotations

from collections.abc import Iterable

from harness.conformance import replay, replay_js
from harness.conformance.captured import Captured
from harness.conformance.checks import (
    anthropic,
    concurrency,
    disconnect,
    errors,
    framing,
    generic,
    http,
    openai,
    openai_chunks,
    openai_usage,
    responses,
    streaming,
)
from harness.conformance.model import Check, CheckResult, Report
from harness.conformance.reading import Digest, Suite, read_suite
from harness.conformance.redaction import Redactor

__all__ = ["CATALOGUE", "DIGESTS", "judge"]

#: Every check, area by area.
CATALOGUE: tuple[Check, ...] = (
    *http.CHECKS,
    *framing.CHECKS,
    *openai.CHECKS,
    *openai_usage.CHECKS,
    *anthropic.CHECKS,
    *responses.CHECKS,
    *generic.CHECKS,
    *streaming.CHECKS,
    *concurrency.CHECKS,
    *errors.CHECKS,
    *disconnect.CHECKS,
    *replay.CHECKS,
    *replay_js.CHECKS,
)

#: What the checks keep of each stream, folded in one pass over its events.
DIGESTS: tuple[type[Digest], ...] = (
    framing.FramingDigest,
    openai_chunks.OpenAIDigest,
    anthropic.AnthropicDigest,
    responses.ResponsesDigest,
    generic.GenericDigest,
    errors.ErrorsDigest,
    streaming.GapDigest,
)


def judge(
    captured: Captured,
    *,
    secrets: Iterable[str] = (),
    checks: Iterable[Check] | None = None,
    fail_on: str = "fail",
) -> Report:
    """Run every check that applies to the suite's dialect.

    A check that raises does not stop the others: its result is an error, with what it
    raised as its finding.

    Args:
        captured: what the suite sent and received.
        secrets: strings (the API key, header values) to redact from every message.
        checks: the checks to run (default: the whole ``CATALOGUE``).
        fail_on: ``fail``, or ``warn`` to let a WARN fail the verdict too.

    Returns:
        The report, checks in catalogue order, with every secret (and every piece of
        one) redacted from every text it shows.
    """
    checks = CATALOGUE if checks is None else checks
    suite = read_suite(captured, DIGESTS)
    report = Report(
        target=captured.target,
        request=captured.request,
        dialect=suite.dialect,
        results=tuple(_run(check, suite) for check in checks if check.applies_to(suite.dialect)),
        requests=tuple(exchange.describe() for exchange in captured.exchanges),
        fail_on=fail_on,
    )
    return Redactor(secrets).report(report)


def _run(check: Check, suite: Suite) -> CheckResult:
    try:
        return CheckResult.of(check, check.run(suite))
    except Exception as exc:  # each check is a boundary: its failure is its own result
        return CheckResult.crashed(check, exc)
