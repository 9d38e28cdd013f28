"""The options that say what a request sends and how its answer is read, shared by the
commands that send requests (``run``, ``check``), and their translation into a
``RequestSpec``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import urllib.parse
from typing import Any

from harness.dialects import DIALECT_NAMES
from harness.errors import ConfigError
from harness.load.payloads import REQUEST_KINDS, RequestSpec, default_api_key_env
from harness.transports import DEFAULT_TRANSPORT, TRANSPORTS

__all__ = [
    "add_mock_arguments",
    "add_request_arguments",
    "embedded_mock_extra",
    "request_spec_from_args",
]


def add_request_arguments(
    target: argparse._ArgumentGroup, *, default_transport: str = DEFAULT_TRANSPORT
) -> None:
    """Add --request, --dialect, --pointer, --method, --model, --header, --body-json,
    --api-key-env, --transport, --http2 and --follow-redirects to ``target``;
    ``default_transport`` is the command's transport unless --http2 asks for httpx."""
    target.add_argument(
        "--request",
        choices=REQUEST_KINDS,
        default="openai-chat",
        help="the body to send (default openai-chat)",
    )
    target.add_argument(
        "--dialect",
        choices=("auto", *DIALECT_NAMES),
        default="auto",
        help="how to read the answer (default: detected)",
    )
    target.add_argument(
        "--pointer", help="generic dialect: JSON pointer to the text, e.g. /content"
    )
    target.add_argument(
        "--method",
        choices=("POST", "GET"),
        default="POST",
        help="with GET, a {prompt} placeholder in the URL's query is filled "
        "in; without one, every request asks the same URL",
    )
    target.add_argument("--model", default="mock-model")
    target.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    target.add_argument("--body-json", help="extra JSON fields; with --request json, the template")
    target.add_argument(
        "--api-key-env",
        help="variable holding the API key "
        "(default OPENAI_API_KEY, or ANTHROPIC_API_KEY for anthropic)",
    )
    why = {
        "aiohttp": "aiohttp measures best under load (on a 2-core VM at 500 streams, TTFT "
        "p99 error 49 ms against httpx's native 25 s; see the README's transports table)",
        "httpx": "httpx hands over each read as the socket gave it, which is the evidence "
        "a check of the stream's framing needs",
    }[default_transport]
    target.add_argument(
        "--transport",
        choices=TRANSPORTS,
        help=f"the HTTP client that reads the streams (default: {default_transport}"
        + (", or httpx with --http2" if default_transport != "httpx" else "")
        + f"): {why}; kernel stamps arrivals with the kernel's receive times",
    )
    target.set_defaults(default_transport=default_transport)
    target.add_argument(
        "--http2", action="store_true", help="HTTP/2 (with httpx, the default then; needs h2)"
    )
    target.add_argument(
        "--follow-redirects",
        action="store_true",
        help="follow redirects within the URL's origin (scheme, host, port), 5 hops at most; "
        "by default a 3xx is recorded as the answer, and keys never go to another origin",
    )


def add_mock_arguments(parser: argparse.ArgumentParser, *, without: str) -> None:
    """The embedded mock's timing options, for a command that starts it without
    ``without`` (``--url``, ``--host``)."""
    mock = parser.add_argument_group(f"embedded mock (without {without})")
    mock.add_argument(
        "--mock-ttft-ms", type=float, default=100.0, help="time to first token, ms (default 100)"
    )
    mock.add_argument(
        "--mock-itl-ms", type=float, default=20.0, help="its gap between tokens, ms (default 20)"
    )
    mock.add_argument(
        "--mock-tokens",
        type=int,
        default=50,
        help="tokens per answer, unless a request asks fewer (default 50)",
    )
    mock.add_argument(
        "--mock-prefill-ms-per-token",
        type=float,
        default=0.0,
        help="its prefill time per uncached prompt token, ms (default 0)",
    )
    mock.add_argument(
        "--mock-prefix-cache-tokens",
        type=int,
        default=0,
        help="its prefix cache's size in prompt tokens (default 0: none)",
    )


def embedded_mock_extra(args: argparse.Namespace) -> list[str]:
    """The embedded mock's prefill and prefix-cache options, where given."""
    extra: list[str] = []
    if getattr(args, "mock_prefill_ms_per_token", 0):
        extra += ["--prefill-ms-per-token", str(args.mock_prefill_ms_per_token)]
    if getattr(args, "mock_prefix_cache_tokens", 0):
        extra += ["--prefix-cache-tokens", str(args.mock_prefix_cache_tokens)]
    return extra


def request_spec_from_args(args: argparse.Namespace, url: str) -> RequestSpec:
    """The ``RequestSpec`` the request options describe (``max_tokens`` from
    ``--max-tokens`` where the command has it).

    Raises:
        ConfigError: a --header or --body-json is malformed, named as the user spells it.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ConfigError("url", f"must be an http:// or https:// URL, not {url!r}")
    http2 = getattr(args, "http2", False)
    if http2 and importlib.util.find_spec("h2") is None:
        raise ConfigError("http2", "needs the h2 package: pip install 'sse-harness[http2]'")
    if args.transport is None:
        args.transport = "httpx" if http2 else args.default_transport
    elif http2 and args.transport != "httpx":
        raise ConfigError("http2", f"speaks HTTP/2 with --transport httpx, not {args.transport}")
    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ConfigError("header", f"expected NAME:VALUE, not {header!r}")
        headers.append((name.strip(), value.strip()))
    body_json: Any = args.body_json
    if body_json is not None and args.request != "json":
        try:
            body_json = json.loads(body_json)
        except ValueError as exc:
            raise ConfigError("body-json", f"not valid JSON ({exc})") from exc
        if not isinstance(body_json, dict):
            raise ConfigError("body-json", "must be a JSON object of extra fields")
    key_env = args.api_key_env or default_api_key_env(args.request)
    if args.api_key_env and not os.environ.get(key_env):
        warning = f"--api-key-env {key_env} is not set: requests go without an API key"
        print(f"sse-harness: warning: {warning}", file=sys.stderr)
    return RequestSpec(
        request=args.request,
        url=url,
        method=args.method,
        model=args.model,
        max_tokens=getattr(args, "max_tokens", None),
        headers=tuple(headers),
        body_json=body_json,
        api_key=os.environ.get(key_env) or None,
    )
