"""sse-harness: load tests and conformance checks for LLM endpoints that stream SSE."""

from harness.errors import ConfigError, DialectError, EventTooLarge, HarnessError, SSEError
from harness.sse import Decoder, Event, encode

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Decoder",
    "DialectError",
    "Event",
    "EventTooLarge",
    "HarnessError",
    "SSEError",
    "__version__",
    "encode",
]
