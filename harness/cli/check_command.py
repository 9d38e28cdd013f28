"""``sse-harness check URL``: the conformance checker's options, its terminal table and
its exit code (0 no FAIL, 1 any FAIL, or any WARN with ``--fail-on warn``, 2 bad usage or
an unreachable target)."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from harness.cli.request_options import add_request_arguments, request_spec_from_args
from harness.conformance.captured import SuiteSettings
from harness.conformance.client_headers import CLIENT_HEADERS
from harness.conformance.display import printable
from harness.conformance.model import AREAS, FAIL_ON, Report, Status
from harness.conformance.render import (
    finding_label,
    render_json,
    render_junit,
    render_markdown,
    summary_line,
)
from harness.errors import ConfigError, ConnectFailed

if TYPE_CHECKING:
    from rich.console import Console  # rich: loaded when the command prints
    from rich.table import Table

    from harness.conformance.capture import Target

__all__ = ["add_check_parser", "check_command", "report_table"]

_DEFAULTS = SuiteSettings()
_STYLES = {
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.INFO: "cyan",
    Status.PASS: "green",
    Status.SKIP: "dim",
    Status.ERROR: "bold magenta",
}
#: The request body that goes with a dialect when --request is not given.
_REQUEST_FOR = {
    "anthropic": "anthropic",
    "openai-completions": "openai-completions",
    "openai-responses": "openai-responses",
}


#: The suite's options: flag, the ``SuiteSettings`` field it sets, its type, its help.
_SUITE_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--streams", "streams", int, "ordinary streams, one after another"),
    ("--max-tokens", "max_tokens", int, "output length of ordinary streams"),
    ("--long-tokens", "long_tokens", int, "output length of the long and the abandoned stream"),
    ("--long-seconds", "long_s", float, "the long stream is cut after this"),
    (
        "--abandon-after",
        "abandon_after_tokens",
        int,
        "tokens before the client leaves the abandoned stream",
    ),
    ("--burst", "burst", int, "streams started at once"),
    ("--timeout", "timeout_s", float, "bound of every other request, in seconds"),
    (
        "--disconnect-wait",
        "disconnect_wait_s",
        float,
        "seconds to watch the server stop an abandoned stream",
    ),
)
#: The report files: flag, its help, its renderer.
_OUTPUTS: tuple[tuple[str, str, Callable[[Report], str]], ...] = (
    ("--json", "write the report as JSON", render_json),
    ("--junit", "write JUnit XML, one testcase per check", render_junit),
    ("--markdown", "write Markdown, e.g. to $GITHUB_STEP_SUMMARY", render_markdown),
)


def _dest(flag: str) -> str:
    """The attribute argparse stores a flag's value in."""
    return flag.removeprefix("--").replace("-", "_")


def add_check_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str
) -> None:
    check = commands.add_parser(
        "check",
        help=summary,
        description=(
            "Send a small, bounded suite of requests to a streaming endpoint (ordinary "
            "streams, one asking for usage, a long one, one abandoned by the client, invalid "
            "requests, a burst of concurrent streams), keep every byte with its arrival time, "
            "and check HTTP, SSE framing, the dialect's schema, streaming behaviour, "
            "concurrency, errors and disconnects. Exit 0 without FAIL, 1 with any FAIL (or "
            "any WARN with --fail-on warn), 2 on bad usage or an unreachable target."
        ),
    )
    check.add_argument("url", help="the endpoint; http://host:port gets the API's usual path")
    add_request_arguments(
        check.add_argument_group("request (as for run)"), default_transport="httpx"
    )
    check.set_defaults(request=None)  # then chosen from --dialect
    check.add_argument(
        "--client-headers",
        choices=sorted(CLIENT_HEADERS),
        help="send the default headers of this client (compression, Accept, User-Agent) so "
        "that compression and proxies are met as users meet them (default: the official "
        "SDK's for the request kind: openai-python or anthropic-python, else httpx; "
        "minimal asks for no compression)",
    )
    suite = check.add_argument_group("the suite (every request bounded in tokens and time)")
    for flag, field, kind, text in _SUITE_OPTIONS:
        suite.add_argument(flag, type=kind, default=getattr(_DEFAULTS, field), help=text)
    server = check.add_argument_group("the server's view of an abandoned stream")
    server.add_argument("--metrics-url", help="the server's Prometheus /metrics")
    server.add_argument(
        "--metrics-gauge",
        help="its gauge of running requests, e.g. vllm:num_requests_running or mock_active_streams",
    )
    server.add_argument(
        "--server-metrics",
        metavar="URL",
        help="a recognised server's /metrics (vLLM, SGLang, TGI, the mock): its own gauge of "
        "running requests judges the abandoned stream, with no --metrics-gauge",
    )
    output = check.add_argument_group("output")
    for flag, text, _ in _OUTPUTS:
        output.add_argument(flag, type=Path, metavar="FILE", help=text)
    output.add_argument(
        "--fail-on",
        choices=sorted(FAIL_ON),
        default="fail",
        help="the lowest severity that fails the verdict (exit 1, JUnit failures): fail "
        "(default), or warn for a strict CI gate",
    )
    output.add_argument("--quiet", action="store_true", help="no progress, no evidence list")
    check.set_defaults(handler=check_command)


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _target(args: argparse.Namespace) -> Target:
    from harness.conformance.capture import Target

    parts = urllib.parse.urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("url", f"expected an http:// or https:// URL, not {args.url!r}")
    if args.request is None:
        args.request = _REQUEST_FOR.get(args.dialect, "openai-chat")
    origin = f"{parts.scheme}://{parts.netloc}"
    if args.server_metrics is not None and args.metrics_gauge is None:
        if args.metrics_url is not None:
            raise ConfigError("server-metrics", "give --server-metrics or --metrics-url, not both")
        from harness.run import recognised_gauge  # pandas: only when it is asked

        found = recognised_gauge([args.server_metrics])
        if found is None:
            raise ConfigError(
                "server-metrics",
                f"no recognised server's gauge of running requests at {args.server_metrics}; "
                "name one with --metrics-url and --metrics-gauge",
            )
        args.metrics_url, args.metrics_gauge = found
    return Target(
        spec=request_spec_from_args(args, args.url),
        dialect=args.dialect,
        pointer=args.pointer,
        transport=args.transport,
        http2=args.http2,
        follow_redirects=args.follow_redirects,
        metrics_url=args.metrics_url,
        metrics_gauge=args.metrics_gauge,
        truth_url=origin if _is_loopback(args.url) else None,
        client_headers=args.client_headers,
    )


def _settings(args: argparse.Namespace) -> SuiteSettings:
    return SuiteSettings(
        **{field: getattr(args, _dest(flag)) for flag, field, _, _ in _SUITE_OPTIONS}
    )


def report_table(report: Report) -> Table:
    """The checks as a table, grouped by area; each row says what was found. Every text
    from the report is shown printable and as plain text (never as Rich markup)."""
    from rich.table import Table
    from rich.text import Text

    title = Text(f"sse-harness check {printable(report.target)}")
    table = Table(title=title, title_justify="left")
    table.add_column("area", style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("what was found", overflow="fold")
    order = {area: position for position, area in enumerate(AREAS)}
    previous = None
    for result in sorted(report.results, key=lambda r: order[r.check.area]):
        area = result.check.area
        if previous is not None and area != previous:
            table.add_section()
        found = Text(printable(result.note or ""), style="dim")
        if result.findings:
            first = result.findings[0]
            more = f" (+{len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
            found = Text(printable(first.message) + more)
        status = Text(result.status.value, style=_STYLES[result.status])
        table.add_row(area if area != previous else "", result.check.id, status, found)
        previous = area
    caption = f"request {report.request}, dialect {report.dialect or 'unknown'}"
    table.caption = Text(printable(caption))
    return table


def _evidence(console: Console, report: Report) -> None:
    from rich.text import Text

    for result in report.results:
        for finding in result.findings:
            label = finding_label(result, finding)
            if label == "INFO":
                continue
            console.print(
                Text(f"{label} {result.check.id}: ", style=_STYLES[Status(label)])
                + Text(printable(finding.message))
            )
            for evidence in finding.evidence:
                shown = printable(evidence.describe())
                console.print(Text("    " + shown, style="dim"), soft_wrap=True)


def check_command(args: argparse.Namespace) -> int:
    """Run the suite, judge it, print the table and write the files asked for."""
    from rich.console import Console
    from rich.text import Text

    from harness.conformance.capture import capture_suite
    from harness.conformance.catalogue import judge

    errors = Console(stderr=True)
    target = _target(args)
    settings = _settings(args)
    try:
        if args.quiet or not errors.is_terminal:
            captured = capture_suite(target, settings)
        else:
            with errors.status("checking…") as status:
                captured = capture_suite(
                    target, settings, progress=lambda step: status.update(f"sending {step}…")
                )
    except ConnectFailed as exc:
        print(
            f"sse-harness: error: the target is unreachable: {printable(str(exc))}", file=sys.stderr
        )
        return EXIT_USAGE
    report = judge(captured, secrets=target.secrets, fail_on=args.fail_on)
    out = Console()
    out.print(report_table(report))
    if not args.quiet:
        _evidence(out, report)
    verdict = summary_line(report)
    out.print(Text(verdict, style="bold red" if report.failed else "bold green"))
    for flag, _, render in _OUTPUTS:
        path = getattr(args, _dest(flag))
        if path is None:
            continue
        try:
            path.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            print(f"sse-harness: error: cannot write {path}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_FAILED if report.failed else EXIT_OK
