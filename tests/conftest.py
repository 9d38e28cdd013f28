"""Shared test set-up: Hypothesis profiles, and the browser tests in the slow set.

The default profile keeps CI fast; ``pytest --hypothesis-profile=thorough`` runs many
more examples of every property. ``-m "not slow"`` leaves out the end-to-end tests
(subprocesses, servers, locust, browsers); CI runs them all.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fast")

#: Every test in here drives a headless browser against servers: all of them are slow.
BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.slow)
