"""The options ``sse-harness locust`` reads itself so that a scenario file can set them:
``sse-harness locust FILE.toml`` (or ``--config FILE.toml``).

A scenario file is the one ``sse-harness run`` reads (``harness.cli.scenario_file``); the
keys with a locust meaning are taken and become locust's options:

- target and request: ``url`` (or ``host``) -> ``--host``; ``request``, ``model``,
  ``max-tokens``, ``dialect``, ``pointer``, ``prompt-file``, ``api-key-env``, the
  timeouts and ``http-client`` -> the locust user's options of the same names;
- workload: ``dataset``, ``dataset-format``, ``dataset-sample``, ``min-``/
  ``max-input-tokens``, ``input-tokens``, ``output-tokens`` (``output-len``),
  ``tokenizer``, ``prefix-groups``, ``prefix-tokens``, ``prefix-cache-bust``, ``seed``;
- load: ``concurrency`` (or ``users``) -> ``-u`` (and ``-r`` as many, unless
  ``spawn-rate`` is given: all at once, as ``run`` starts them), ``duration``
  (seconds, or locust's ``1m30s``; or ``run-time``) -> ``-t``, ``headless``;
- the command's own: ``workers``, ``server-metrics``, ``server-series``,
  ``scrape-interval`` and the embedded mock's ``mock-*``.

A key of ``run``'s with no locust meaning (``rate``, ``requests``, ``prompt``, ``[slo]``,
...) is refused with its file and line: a file that ran a different load under locust
than under ``run`` would mislead. Flags on the command line override the file (they are
the same options, spelled as locust spells them: ``-u``, ``-t``, ``--host``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.cli.scenario_file import load_scenario
from harness.cli.workload_options import add_workload_arguments
from harness.dialects import DIALECT_NAMES
from harness.load.payloads import REQUEST_KINDS

__all__ = ["add_scenario_arguments", "locust_options", "parse_command", "timespan"]

#: What the locust user's ``--http-client`` takes (``harness.locust.settings``, which the
#: command may not import: it is imported by locust processes only).
HTTP_CLIENTS = ("fasthttp", "requests")
_TIMESPAN = re.compile(r"(\d+h)?(\d+m)?(\d+s)?")


def timespan(text: str) -> str:
    """A duration as locust's ``-t`` takes it: whole seconds (``30``) or ``1h2m3s``."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        if text and _TIMESPAN.fullmatch(text):
            return text
        raise argparse.ArgumentTypeError(f"seconds, or as 1h30m, not {text!r}") from None
    if not seconds > 0 or not seconds.is_integer():
        raise argparse.ArgumentTypeError(f"a whole number of seconds above 0, not {text!r}")
    return f"{int(seconds)}s"


def add_scenario_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Add ``--config`` and the options a scenario may set that locust's processes take.

    Returns:
        The options to pass on to locust (all but ``--host``, which the command passes
        itself, or starts an embedded mock without).
    """
    parser.add_argument(
        "--config",
        type=Path,
        metavar="SCENARIO.toml",
        help="read the options from a scenario file (as run's; flags override it); the "
        "run folder gets the resolved one, scenario.toml",
    )
    before = len(parser._actions)  # argparse keeps no public list of them
    target = parser.add_argument_group("target and request (the locust user's options)")
    target.add_argument("--host", "-H", "--url", dest="host", help="the endpoint")
    target.add_argument("--request", choices=REQUEST_KINDS, help="the body to send")
    target.add_argument("--dialect", choices=("auto", *DIALECT_NAMES), help="how to read it")
    target.add_argument("--model", help="the model to ask for")
    target.add_argument("--max-tokens", type=int, help="output length to ask for")
    target.add_argument("--prompt-file", type=Path, help="JSONL of prompts or message lists")
    target.add_argument("--api-key-env", help="variable holding the API key")
    target.add_argument("--pointer", help="generic dialect: JSON pointer to the text")
    for name in ("connect", "ttft", "idle", "total"):
        target.add_argument(f"--{name}-timeout", type=float, help="seconds")
    target.add_argument("--http-client", choices=HTTP_CLIENTS, help="the locust user's client")
    add_workload_arguments(parser)
    load = parser.add_argument_group("load (locust's options)")
    load.add_argument("--seed", type=int, help="seed of drawn lengths and samples")
    load.add_argument("-u", "--users", "--concurrency", dest="users", type=int, help="users")
    load.add_argument("-r", "--spawn-rate", type=float, help="users started per second")
    load.add_argument(
        "-t", "--run-time", "--duration", dest="run_time", type=timespan, help="test length"
    )
    load.add_argument("--headless", action="store_true", default=None, help="no web UI")
    return [a for a in parser._actions[before:] if a.dest != "host"]


def locust_options(args: argparse.Namespace, passed: list[argparse.Action]) -> list[str]:
    """The options of ``passed`` that ``args`` sets, as locust's command line."""
    options: list[str] = []
    for action in passed:
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        flag = next(f for f in action.option_strings if f.startswith("--"))
        options += [flag] if value is True else [flag, str(value)]
    return options


def parse_command(
    argv: list[str], parser: argparse.ArgumentParser
) -> tuple[argparse.Namespace, list[str]]:
    """The command's options (a scenario file's values, flags over them), and locust's
    arguments: the scenario's options passed on, then the rest as given.

    Args:
        argv: the command line after ``locust``.
        parser: the command's own options; the scenario's are added to it.

    Raises:
        ConfigError: the scenario file is not one, or sets a key locust has no use for.
    """
    for i, arg in enumerate(argv):  # the scenario named as a positional: no option's value
        if arg.endswith(".toml") and not arg.startswith("-") and argv[i - 1 : i] != ["--config"]:
            argv = [*argv[:i], "--config", *argv[i:]]
            break
    passed = add_scenario_arguments(parser)
    own, rest = parser.parse_known_args(argv)
    if own.config is not None:
        from harness.cli.run_options import run_parser

        values, _ = load_scenario(own.config, parser, command="locust", elsewhere=run_parser())
        own, rest = parser.parse_known_args(argv, namespace=argparse.Namespace(**values))
        if "users" in values and own.spawn_rate is None:
            own.spawn_rate = float(own.users)  # all at once, as run's concurrency starts
    return own, [*locust_options(own, passed), *rest]
