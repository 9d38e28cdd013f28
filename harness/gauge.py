"""A server's own gauge of running requests, read from its Prometheus ``/metrics``.

Where a server's ground truth per request cannot be had, a gauge still tells whether it
stopped the streams the client abandoned: after the run it must fall back to where it
was before the run. That is all a gauge can say (not which stream stopped, nor how many
tokens went out after a close), and the summary says so.
"""

from __future__ import annotations

import re
import time
import urllib.request

__all__ = ["parse_gauge", "read_gauge", "wait_for_baseline"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_gauge(text: str, name: str) -> float | None:
    """The sum of every sample of metric ``name`` (all label sets), or None if absent."""
    total = None
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            try:
                value = float(match.group(3))
            except ValueError:
                continue
            total = value if total is None else total + value
    return total


def read_gauge(url: str, name: str, *, timeout_s: float = 2.0) -> float | None:
    """Read the gauge; None when the endpoint or the metric cannot be had."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # the user's URL
            return parse_gauge(response.read().decode("utf-8", "replace"), name)
    except (OSError, ValueError):
        return None


def wait_for_baseline(
    url: str, name: str, baseline: float, *, timeout_s: float = 10.0, interval_s: float = 0.1
) -> dict[str, float | bool | None]:
    """Poll until the gauge is back at ``baseline`` or below (bounded by ``timeout_s``).

    Returns:
        ``baseline``, ``after_run`` (the first reading), ``returned`` and
        ``seconds_to_baseline`` (None when it did not return in time).
    """
    start = time.monotonic()
    first = value = read_gauge(url, name)
    while value is not None and value > baseline and time.monotonic() - start < timeout_s:
        time.sleep(interval_s)
        value = read_gauge(url, name)
    returned = value is not None and value <= baseline
    return {
        "baseline": baseline,
        "after_run": first,
        "returned": returned,
        "seconds_to_baseline": time.monotonic() - start if returned else None,
    }
