"""Keeping the target's secrets out of a report, in one pass over everything it shows.

A server can echo the API key or a header's value anywhere: in an error body, an
in-stream error, a broken event, a response header. Reports show such text cut to a
bound (an excerpt of 80 bytes, a body's first 120), so a secret can also appear cut in
two. ``Redactor`` hides each secret whole (with ``harness.load.recorder.redact``) and then
every piece of one at least ``PIECE_CHARS`` long, wherever a report carries text: the
target, the requests' descriptions, and each finding's message and evidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from harness.conformance.model import CheckResult, Evidence, Report
from harness.load.recorder import redact

__all__ = ["PIECE_CHARS", "Redactor"]

#: A secret's pieces this long or longer are hidden as well as the whole secret.
PIECE_CHARS = 8


class Redactor:
    """Hides secrets, and their pieces, in the text of a report.

    Args:
        secrets: what must never appear (the API key, every header's value).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._windows = {
            secret[i : i + PIECE_CHARS]
            for secret in self.secrets
            for i in range(len(secret) - PIECE_CHARS + 1)
        }

    def text(self, text: str) -> str:
        """``text`` with every secret, and every piece of one, as ``[redacted]``."""
        if not self.secrets:
            return text
        text = redact(text, self.secrets)
        return redact(text, self._pieces(text)) if self._windows else text

    def data(self, data: bytes) -> bytes:
        """The same for bytes (an excerpt): other bytes, even invalid UTF-8, unchanged."""
        if not self.secrets:
            return data
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def report(self, report: Report) -> Report:
        """``report`` with every text it carries hidden."""
        return dataclasses.replace(
            report,
            target=self.text(report.target),
            results=tuple(self.result(r) for r in report.results),
            requests=tuple(self.mapping(m) for m in report.requests),
        )

    def result(self, result: CheckResult) -> CheckResult:
        findings = tuple(
            dataclasses.replace(
                f,
                message=self.text(f.message),
                evidence=tuple(self.evidence(e) for e in f.evidence),
            )
            for f in result.findings
        )
        note = None if result.note is None else self.text(result.note)
        return dataclasses.replace(result, findings=findings, note=note)

    def evidence(self, item: Evidence) -> Evidence:
        return dataclasses.replace(
            item,
            request=self.text(item.request),
            excerpt=None if item.excerpt is None else self.data(item.excerpt),
            detail=None if item.detail is None else self.text(item.detail),
        )

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.text(v) if isinstance(v, str) else v for k, v in values.items()}

    def _pieces(self, text: str) -> list[str]:
        """The runs of ``text`` made of windows of a secret, longest first."""
        covered = [False] * len(text)
        for start in range(len(text) - PIECE_CHARS + 1):
            if text[start : start + PIECE_CHARS] in self._windows:
                covered[start : start + PIECE_CHARS] = [True] * PIECE_CHARS
        runs: list[str] = []
        begin: int | None = None  # where the run being read began
        for position, hidden in enumerate([*covered, False]):
            if hidden and begin is None:
                begin = position
            elif not hidden and begin is not None:
                runs.append(text[begin:position])
                begin = None
        return sorted(runs, key=len, reverse=True)
