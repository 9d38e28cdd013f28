"""sse-harness: load tests and conformance checks for LLM endpoints that stream SSE.

The names below are the library's public API; every other module is internal and may
change between releases. They load on first use, so ``import harness`` stays cheap and
pulls in neither pandas nor locust (whose gevent patches the standard library)::

    from harness import Bounds, ClosedLoop, RequestSpec, RunConfig, gate, run_load

    config = RunConfig(
        spec=RequestSpec(url="http://127.0.0.1:8000/v1/chat/completions"),
        profile=ClosedLoop(concurrency=8),
        bounds=Bounds(requests=100),
    )
    result = run_load(config)
    print(gate(result.summary, {"ttft.p95": "< 500 ms", "error_rate": "== 0"}))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module that defines it.
_HOMES = {
    # run a load
    "Bounds": "harness.load.schedule",
    "ClosedLoop": "harness.load.schedule",
    "OpenLoop": "harness.load.schedule",
    "RateSearch": "harness.run",
    "RequestSpec": "harness.load.payloads",
    "RunConfig": "harness.load.config",
    "RunResult": "harness.run",
    "Sweep": "harness.run",
    "Timeouts": "harness.transports",
    "run_load": "harness.run",
    # check an endpoint
    "Report": "harness.conformance",
    "SuiteSettings": "harness.conformance",
    "Target": "harness.conformance",
    "check_endpoint": "harness.conformance",
    # read, gate and compare results
    "Comparison": "harness.analysis.compare",
    "RequestRecord": "harness.record",
    "Verdict": "harness.analysis.gate",
    "compare_runs": "harness.analysis.compare",
    "read_records": "harness.results",
    "read_summary": "harness.results",
    # the mock, the pytest plugin's fixtures' types and the locust user
    "EmbeddedMock": "harness.servers.embedded",
    "LLMStreamUser": "harness.locust.user",
    "MockLLM": "harness.pytest_plugin",
    "embedded_mock": "harness.servers.embedded",
    # the SSE parser and the errors
    "ConfigError": "harness.errors",
    "Decoder": "harness.sse",
    "DialectError": "harness.errors",
    "Event": "harness.sse",
    "EventTooLarge": "harness.errors",
    "HarnessError": "harness.errors",
    "SSEError": "harness.errors",
    "StreamReader": "harness.dialects",
    "encode": "harness.sse",
}
#: Public names bound under another name in their home module.
_ALIASES = {"gate": ("harness.analysis.gate", "check")}

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif name in _ALIASES:
        module, attribute = _ALIASES[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from harness.analysis.compare import Comparison, compare_runs
    from harness.analysis.gate import Verdict
    from harness.analysis.gate import check as gate
    from harness.conformance import Report, SuiteSettings, Target, check_endpoint
    from harness.dialects import StreamReader
    from harness.errors import ConfigError, DialectError, EventTooLarge, HarnessError, SSEError
    from harness.load.config import RunConfig
    from harness.load.payloads import RequestSpec
    from harness.load.schedule import Bounds, ClosedLoop, OpenLoop
    from harness.locust.user import LLMStreamUser
    from harness.pytest_plugin import MockLLM
    from harness.record import RequestRecord
    from harness.results import read_records, read_summary
    from harness.run import RateSearch, RunResult, Sweep, run_load
    from harness.servers.embedded import EmbeddedMock, embedded_mock
    from harness.sse import Decoder, Event, encode
    from harness.transports import Timeouts
