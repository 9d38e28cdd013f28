"""The library's public surface: what ``harness`` exports, pinned, and what it costs to
import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harness

PUBLIC = [
    "Bounds",
    "ClosedLoop",
    "Comparison",
    "ConfigError",
    "Decoder",
    "DialectError",
    "EmbeddedMock",
    "Event",
    "EventTooLarge",
    "HarnessError",
    "LLMStreamUser",
    "MockLLM",
    "OpenLoop",
    "RateSearch",
    "Report",
    "RequestRecord",
    "RequestSpec",
    "RunConfig",
    "RunResult",
    "SSEError",
    "StreamReader",
    "SuiteSettings",
    "Sweep",
    "Target",
    "Timeouts",
    "Verdict",
    "__version__",
    "check_endpoint",
    "compare_runs",
    "embedded_mock",
    "encode",
    "gate",
    "read_records",
    "read_summary",
    "run_load",
]
#: The modules that stay at the top of the package: the core, one run end to end, and
#: the pytest plugin's entry point.
TOP_LEVEL = ["__init__", "errors", "lifeline", "limits", "pytest_plugin", "record", "results",
             "sse"]  # fmt: skip


def test_the_public_names_are_pinned_and_sorted() -> None:
    assert harness.__all__ == PUBLIC
    assert harness.__all__ == sorted(harness.__all__)


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "LLMStreamUser"])
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(harness, name) is not None


def test_a_name_that_is_not_public_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'execute'"):
        _ = harness.execute


def test_importing_the_package_loads_neither_pandas_nor_locust() -> None:
    code = (
        "import sys, harness; from harness import Event, ConfigError; "
        "print(sorted(m for m in ('pandas', 'locust', 'gevent', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_locust_user_is_public_and_loads_locust_only_when_asked_for() -> None:
    code = (
        "import harness, sys; u = harness.LLMStreamUser; print(u.__name__, 'locust' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["LLMStreamUser", "True"]


def test_only_the_core_modules_live_outside_a_sub_package() -> None:
    root = Path(harness.__file__).parent
    assert sorted(p.stem for p in root.glob("*.py")) == TOP_LEVEL
