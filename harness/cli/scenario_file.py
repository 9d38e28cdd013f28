"""Scenario files: a whole ``run`` described in TOML (``sse-harness run --config FILE``).

Every key is one of ``run``'s options, spelled as on the command line without the
dashes (``max-tokens``, or ``max_tokens``); tables only group them (``[target]``,
``[workload]``, ``[load]``, ...), except ``[slo]``, whose keys are the SLO targets in
seconds (``ttft = 0.5``). A switch takes ``true``; a repeatable option (``prompt``,
``header``, ``slo``) a list. Relative paths are read from the file's folder.

Flags given on the command line override the file's values (a repeatable flag adds to
the file's list). The run folder gets the resolved scenario, ``scenario.toml``: every
option that differs from its default, paths made absolute, secrets left out, so that
``sse-harness run --config <run>/scenario.toml`` runs the same load again (into a new
folder).

Errors name the file, the line and the key: ``scenario.toml:7: concurency: unknown
setting``; a value that the run refuses later is named by its line too.

``sse-harness locust`` reads the same files (``harness.cli.locust_scenario``): the keys
with a locust meaning become locust's options, and a key of ``run``'s with none (``rate``,
``[slo]``) is refused by its line, so a file never runs a load other than it says.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = ["SCENARIO_FILE", "apply_scenario", "located", "scenario_text", "write_scenario"]

#: The resolved scenario's name in the run folder.
SCENARIO_FILE = "scenario.toml"
#: Options a scenario neither sets nor records: where the files go, how the terminal
#: looks, and the file itself.
_NOT_RECORDED = frozenset({"config", "scenario", "out", "quiet", "help"})
_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each option by every name a file may give it: its long flags without dashes, with
    ``-`` or ``_``, and its destination."""
    names: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse keeps no public list of them
        if action.dest in _NOT_RECORDED or not action.option_strings:
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                names[flag[2:]] = names[flag[2:].replace("-", "_")] = action
        names.setdefault(action.dest, action)
    return names


def _lines(text: str) -> dict[tuple[str, str], int]:
    """``(table, key)`` -> the line where the key is set (1-based)."""
    table = ""
    found: dict[tuple[str, str], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _TABLE.match(line):
            table = match.group(1)
            found.setdefault(("", table), number)
        elif match := _KEY.match(line):
            found.setdefault((table, match.group(1)), number)
    return found


def _read(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc


def load_scenario(
    path: Path,
    parser: argparse.ArgumentParser,
    *,
    command: str = "run",
    elsewhere: argparse.ArgumentParser | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The options a scenario file sets, as ``parser``'s destinations and values.

    Args:
        path: the file.
        parser: the options of the command that reads it.
        command: its name, for the errors.
        elsewhere: the options of a command the file may have been written for (``run``),
            whose keys this one refuses as having no meaning for it.

    Returns:
        The values, and for each destination where it was set (``file:line: key``).

    Raises:
        ConfigError: the file cannot be read or parsed, a key is unknown, or a value has
            the wrong type or is not one of its choices (named by file, line and key).
    """
    data, text = _read(path)
    lines = _lines(text)
    actions = _actions(parser)
    foreign = _actions(elsewhere) if elsewhere is not None else {}
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    slo: list[str] = []

    def place(table: str, key: str) -> str:
        line = lines.get((table, key))
        return f"{path}:{line}: {key}" if line else f"{path}: {key}"

    def settings() -> Iterator[tuple[str, str, Any]]:
        for key, value in data.items():
            if isinstance(value, Mapping):
                for inner, item in value.items():
                    yield key, inner, item
            else:
                yield "", key, value

    for table, key, value in settings():
        at = place(table, key)
        if table == "slo" and "slo" not in actions:
            raise ConfigError(at, f"an SLO target has no meaning for sse-harness {command}")
        if table == "slo":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ConfigError(at, "an SLO target is a number of seconds (or '500ms')")
            slo.append(f"{key}={value}")
            where["slo"] = at
            continue
        if isinstance(value, Mapping):
            raise ConfigError(at, "tables nest one level deep: [table] then key = value")
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            raise ConfigError(at, "an array of tables ([[...]]) is no setting: use [table]")
        action = actions.get(key)
        if action is None and key in foreign:
            raise ConfigError(at, f"a setting of sse-harness run with no meaning for {command}")
        if action is None:
            close = difflib.get_close_matches(key, list(actions), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                at,
                f"unknown setting; {hint}the keys are {command}'s options "
                f"(sse-harness {command} -h)",
            )
        values[action.dest] = _value(action, value, at, path.parent)
        where[action.dest] = at
    if slo:
        values["slo"] = [*values.get("slo", []), *slo]
    return values, where


def _value(action: argparse.Action, value: Any, at: str, base: Path) -> Any:
    """A file's value as the option's destination holds it, checked like the flag."""
    if isinstance(action, argparse._StoreConstAction):  # store_true / store_false
        if not isinstance(value, bool):
            raise ConfigError(at, "a switch: true or false")
        return action.const if value else action.default
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_scalar(action, item, at, base) for item in items]
    if isinstance(value, list):
        raise ConfigError(at, "takes one value, not a list")
    return _scalar(action, value, at, base)


def _scalar(action: argparse.Action, value: Any, at: str, base: Path) -> Any:
    if isinstance(value, bool | dict | list) or value is None:
        raise ConfigError(at, f"expected a number or a string, not {json.dumps(value)}")
    kind = action.type
    try:
        if kind is Path:
            converted: Any = Path(str(value))
            if not converted.is_absolute():
                converted = base / converted
        elif callable(kind):
            converted = kind(str(value)) if not isinstance(value, str) else kind(value)
        else:
            converted = value if isinstance(value, str) else str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        raise ConfigError(at, f"not a valid value: {value!r}") from exc
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(at, f"must be one of {choices}, not {value!r}")
    return converted


def apply_scenario(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill ``args`` from its ``--config`` file: the file's values first, the command
    line's flags over them. Records where each value came from in ``args.scenario_where``.

    Raises:
        ConfigError: the file is not a scenario (see ``load_scenario``).
    """
    path = Path(args.config)
    values, where = load_scenario(path, parser)
    argv = list(getattr(args, "argv", None) or [])
    own = argv[argv.index("run") + 1 :] if "run" in argv else argv
    namespace = argparse.Namespace(**values)
    parsed = parser.parse_args(own, namespace=namespace)
    given = {dest for dest in values if getattr(parsed, dest) != values[dest]}
    for dest, value in vars(parsed).items():
        setattr(args, dest, value)
    args.scenario_where = {dest: at for dest, at in where.items() if dest not in given}


@contextlib.contextmanager
def located(args: argparse.Namespace) -> Iterator[None]:
    """Name the scenario file's line in a ``ConfigError`` about a value it set."""
    where: dict[str, str] = getattr(args, "scenario_where", None) or {}
    try:
        yield
    except ConfigError as exc:
        at = where.get(exc.field.replace("-", "_"))
        if at is None:
            raise
        raise ConfigError(at, exc.reason) from exc


def scenario_text(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    secrets: tuple[str, ...] = (),
    *,
    command: str = "run",
) -> str:
    """The resolved scenario of a run: every option whose value differs from its default
    (paths absolute), as TOML. A value holding a secret is left out, with a comment."""
    lines = [
        "# The resolved scenario of this run: run it again with",
        f"#   sse-harness {command} --config scenario.toml",
        "# (flags given with it override these values; --out picks the new run's folder).",
        "",
    ]
    seen: set[str] = set()
    for action in parser._actions:
        if action.dest in _NOT_RECORDED or not action.option_strings or action.dest in seen:
            continue
        seen.add(action.dest)
        value = getattr(args, action.dest, None)
        if value is None or value == action.default or (value == [] and not action.default):
            continue
        key = next(f[2:] for f in action.option_strings if f.startswith("--"))
        if isinstance(action, argparse._StoreConstAction):
            lines.append(f"{key} = true")
            continue
        items = value if isinstance(value, list) else [value]
        kept = [item for item in items if not any(s and s in str(item) for s in secrets)]
        if len(kept) < len(items):
            lines.append(f"# {key}: {len(items) - len(kept)} value(s) left out: they hold a secret")
        if not kept:
            continue
        toml = [_toml(item) for item in kept]
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(toml)}]")
        else:
            lines.append(f"{key} = {toml[0]}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value.resolve())
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def write_scenario(
    out_dir: Path,
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    secrets: tuple[str, ...] = (),
    *,
    command: str = "run",
) -> Path:
    """Write the run's resolved scenario into its folder; returns the file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SCENARIO_FILE
    path.write_text(scenario_text(args, parser, secrets, command=command), encoding="utf-8")
    return path
