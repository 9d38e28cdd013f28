"""``sse-harness decode``: what a captured response body says, as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import EXIT_OK, usage_error
from harness.dialects import DIALECT_NAMES

__all__ = ["DIALECT_CHOICES", "add_decode_parser"]

DIALECT_CHOICES = ("auto", *DIALECT_NAMES)


def add_decode_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    decode = commands.add_parser(
        "decode",
        help=summary,
        description=(
            "Read a captured streaming response body (for example saved with `curl -N`) and "
            "print one JSON object: the dialect, the rebuilt text, reasoning, tool calls, "
            "finish reason, usage, event counts, and any in-stream or protocol error."
        ),
    )
    decode.add_argument("file", type=Path, help="the body to decode; - reads standard input")
    decode.add_argument(
        "--content-type",
        help="the response's Content-Type (text/plain selects plain text); default: SSE",
    )
    decode.add_argument(
        "--dialect",
        choices=DIALECT_CHOICES,
        default="auto",
        help="the API format of the stream (default: detected from the first event)",
    )
    decode.add_argument(
        "--pointer",
        help="for the generic dialect: a JSON pointer to the text field, e.g. /content",
    )
    decode.set_defaults(handler=_decode)


def _decode(args: argparse.Namespace) -> int:
    from harness.dialects.decode import decode_body, render_summary

    try:
        body = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        return usage_error(f"cannot read {args.file}: {exc.strerror or exc}")
    result = decode_body(
        body, content_type=args.content_type, dialect=args.dialect, pointer=args.pointer
    )
    print(render_summary(result))
    return EXIT_OK
