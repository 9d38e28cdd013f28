"""What a conformance check is and what it finds. Pure data: no I/O, no clock.

A ``Check`` has a stable id (``openai.finish-reason-once``), an area, the most severe
verdict it can give, and a one-line rationale. Run over a captured suite it returns
``Finding``s (each with its own severity, never above the check's, and the evidence: which
request, at which byte offset, which bytes) or ``Skip`` when it cannot judge. A
``CheckResult`` is a check with its findings and its status; a ``Report`` holds them all.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.conformance.display import brief, show_bytes

__all__ = [
    "API_DIALECTS",
    "AREAS",
    "Check",
    "CheckFactory",
    "CheckResult",
    "Evidence",
    "Finding",
    "Passed",
    "Report",
    "SSE_DIALECTS",
    "Severity",
    "Skip",
    "Status",
    "brief",
    "excerpt",
    "show_bytes",
]

#: The areas, in the order reports list them.
AREAS = (
    "http",
    "framing",
    "openai",
    "anthropic",
    "responses",
    "generic",
    "streaming",
    "concurrency",
    "errors",
    "disconnect",
    "sdk",
)

#: The documented APIs, whose streams are ``text/event-stream`` by their own docs.
API_DIALECTS = frozenset({"openai-chat", "openai-completions", "openai-responses", "anthropic"})
#: The dialects whose streams are event streams (every one but ``text``).
SSE_DIALECTS = frozenset(
    {"openai-chat", "openai-completions", "openai-responses", "anthropic", "generic"}
)

#: How many bytes of a body an excerpt shows.
EXCERPT_BYTES = 80


class Severity(enum.StrEnum):
    """How bad a finding is.

    FAIL: breaks a WHATWG-conformant parser or an official SDK, or loses content.
    WARN: works with the official clients but is fragile or off the documented format.
    INFO: worth knowing; often a documented vendor habit that clients accept.
    """

    FAIL = "FAIL"
    WARN = "WARN"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Severity.FAIL: 3, Severity.WARN: 2, Severity.INFO: 1}


class Status(enum.StrEnum):
    """A check's outcome: passed, the severity of its worst finding, skipped, or an error
    (the check itself raised, so it could not judge)."""

    PASS = "pass"
    FAIL = "FAIL"
    WARN = "WARN"
    INFO = "INFO"
    SKIP = "skip"
    ERROR = "error"


#: For each ``--fail-on`` level, the statuses that fail the verdict.
FAIL_ON: Mapping[str, frozenset[Status]] = {
    "fail": frozenset({Status.FAIL, Status.ERROR}),
    "warn": frozenset({Status.FAIL, Status.ERROR, Status.WARN}),
}


def excerpt(body: bytes, offset: int, size: int = EXCERPT_BYTES) -> bytes:
    """At most ``size`` bytes of ``body`` from ``offset``."""
    return body[offset : offset + size]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Where a finding was seen.

    Attributes:
        request: the label of the request of the suite (``stream-1``, ``burst-3``...).
        offset: the byte offset in that response's body, when it is about bytes.
        excerpt: the body's bytes at that offset (at most ``EXCERPT_BYTES``).
        detail: anything else that shows it (times, a header's value, counts).
    """

    request: str
    offset: int | None = None
    excerpt: bytes | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "offset": self.offset,
            "excerpt": None if self.excerpt is None else show_bytes(self.excerpt),
            "detail": self.detail,
        }

    def describe(self) -> str:
        """One line: ``stream-1 @ 1234: b'data: {...'`` and the detail."""
        where = self.request if self.offset is None else f"{self.request} @ byte {self.offset}"
        parts = [where]
        if self.detail:
            parts.append(self.detail)
        if self.excerpt is not None:
            parts.append(show_bytes(self.excerpt))
        return ": ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing a check found."""

    check: str
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "evidence": [e.as_dict() for e in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class Skip:
    """Returned by a check that cannot judge this suite, with the reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class Passed:
    """Returned by a check that passed and has something to say about how it knew."""

    note: str


#: A check function: a ``Suite`` in, findings (none: passed), ``Skip`` or ``Passed`` out.
CheckFunction = Callable[[Any], "Sequence[Finding] | Skip | Passed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One check of the catalogue.

    Attributes:
        id: stable, ``area.name``; reports and CI filters key on it.
        area: one of ``AREAS``.
        severity: the most severe verdict it gives.
        title: a few words, for tables.
        rationale: one line: why it matters, and to whom.
        run: the pure function that judges a ``harness.conformance.reading.Suite``.
        dialects: the dialects it applies to; None: all of them.
    """

    id: str
    area: str
    severity: Severity
    title: str
    rationale: str
    run: CheckFunction = field(repr=False, compare=False)
    dialects: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.area not in AREAS or not self.id.startswith(self.area + "."):
            raise ValueError(f"check {self.id!r}: its id must start with a known area")

    def applies_to(self, dialect: str | None) -> bool:
        return self.dialects is None or dialect in self.dialects

    def finding(
        self, message: str, *evidence: Evidence, severity: Severity | None = None
    ) -> Finding:
        """A finding of this check (at its own severity unless a lower one is given)."""
        chosen = severity or self.severity
        if chosen.rank > self.severity.rank:
            raise ValueError(f"{self.id} cannot report {chosen} (its most is {self.severity})")
        return Finding(check=self.id, severity=chosen, message=message, evidence=evidence)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area,
            "severity": self.severity.value,
            "title": self.title,
            "rationale": self.rationale,
        }


@dataclass(frozen=True, slots=True)
class CheckFactory:
    """Makes the checks of one area, so that each reads as one line of its catalogue.

    Attributes:
        area: the area of every check it makes.
        dialects: the dialects they apply to unless one says otherwise; None: all of them.
    """

    area: str
    dialects: frozenset[str] | None = None

    def __call__(
        self,
        id_: str,
        severity: Severity,
        title: str,
        rationale: str,
        run: CheckFunction,
        dialects: frozenset[str] | None = None,
    ) -> Check:
        """A check of this area (``dialects``: narrower than the area's, when given)."""
        return Check(
            id=id_,
            area=self.area,
            severity=severity,
            title=title,
            rationale=rationale,
            run=run,
            dialects=self.dialects if dialects is None else dialects,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """A check run over one suite."""

    check: Check
    status: Status
    findings: tuple[Finding, ...] = ()
    note: str | None = None  # why it was skipped, or how it passed

    @classmethod
    def of(cls, check: Check, outcome: Sequence[Finding] | Skip | Passed) -> CheckResult:
        if isinstance(outcome, Skip):
            return cls(check=check, status=Status.SKIP, note=outcome.reason)
        if isinstance(outcome, Passed):
            return cls(check=check, status=Status.PASS, note=outcome.note)
        findings = tuple(outcome)
        if not findings:
            return cls(check=check, status=Status.PASS)
        worst = max(findings, key=lambda f: f.severity.rank).severity
        return cls(check=check, status=Status(worst.value), findings=findings)

    @classmethod
    def crashed(cls, check: Check, exc: Exception) -> CheckResult:
        """A check that raised instead of judging: an error, with what it raised as its
        finding (at the check's own severity, since it could not tell a lower one)."""
        said = brief(str(exc), bare=True)
        message = f"the check could not judge the suite: {type(exc).__name__}: {said}"
        finding = Finding(check=check.id, severity=check.severity, message=message)
        return cls(check=check, status=Status.ERROR, findings=(finding,))

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.check.as_dict(),
            "status": self.status.value,
            "note": self.note,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Every check's result over one suite, with what was sent and received.

    Attributes:
        target: the URL checked (secrets redacted).
        request: the kind of request body sent.
        dialect: the dialect the streams were read as (None when none could be told).
        results: one per check that applies to the dialect, in catalogue order.
        requests: a short description of each request of the suite and its response.
        fail_on: the lowest severity that fails the verdict: ``fail`` (FAIL, and a check
            that could not judge), or ``warn`` (WARN too: strict, for CI).
    """

    target: str
    request: str
    dialect: str | None
    results: tuple[CheckResult, ...]
    requests: tuple[Mapping[str, Any], ...] = ()
    fail_on: str = "fail"

    def __post_init__(self) -> None:
        if self.fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {self.fail_on!r}")

    @property
    def failing(self) -> frozenset[Status]:
        """The statuses that fail the verdict."""
        return FAIL_ON[self.fail_on]

    @property
    def failed(self) -> bool:
        """A check ended in a failing status (``fail_on``)."""
        failing = self.failing
        return any(r.status in failing for r in self.results)

    def counts(self) -> dict[str, int]:
        """How many checks ended in each status."""
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts
