"""Which CPU each client process runs on (``--processes N``).

One event loop uses one core, so N client processes help only on N distinct CPUs. The
choice is a pure function of what the run may use: the CPUs the parent process is allowed
(``os.sched_getaffinity``, narrowed by ``taskset`` or a container's cpuset) and the CPUs
the embedded mock was pinned to. Each process gets a CPU of its own, the mock's CPUs last
(a client beside the mock delays both); when fewer CPUs are allowed than processes, they
share, round-robin, and the placement says so in its ``warning``.

A single client process is not pinned to one CPU: it may use every allowed CPU but the
mock's (the scheduler moves it where it is free).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Placement", "allowed_cpus", "place_processes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where the client processes of a run go.

    Attributes:
        cpus: per client process, the CPUs it is pinned to (empty: not pinned).
        allowed: the CPUs the run may use (empty: not known on this platform).
        mock: the CPUs the embedded mock is pinned to (empty: no embedded mock, or unpinned).
        warning: what is wrong with the placement, in a sentence, or None.
    """

    cpus: tuple[tuple[int, ...], ...]
    allowed: tuple[int, ...] = ()
    mock: tuple[int, ...] = ()
    warning: str | None = None

    @property
    def client_cpus(self) -> int:
        """How many CPUs the client has to itself: the allowed ones but the mock's (all of
        them when the mock has every one); 0 when the platform does not say."""
        free = [c for c in self.allowed if c not in self.mock]
        return len(free or self.allowed)

    def describe(self) -> str:
        """One line for the terminal, e.g. ``client processes on CPUs 1, 0 (mock on 0)``."""
        if not self.allowed:
            return "client processes not pinned (this platform does not say which CPUs)"
        mock = f" (mock on {_cpus(self.mock)})" if self.mock else ""
        if len(self.cpus) == 1:
            return f"client process on CPUs {_cpus(self.cpus[0])}{mock}"
        shown = ", ".join(_cpus(c) for c in self.cpus)
        return f"client processes on CPUs {shown}{mock}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpus": [list(c) for c in self.cpus],
            "allowed": list(self.allowed),
            "mock": list(self.mock),
            "warning": self.warning,
        }


def _cpus(cpus: Iterable[int]) -> str:
    return "+".join(str(c) for c in cpus) or "any"


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on, ascending; empty where the platform cannot say."""
    if not hasattr(os, "sched_getaffinity"):
        return ()
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except OSError:
        return ()


def place_processes(count: int, allowed: Iterable[int], mock: Iterable[int] = ()) -> Placement:
    """Choose a CPU for each of ``count`` client processes.

    Args:
        count: client processes, at least 1.
        allowed: the CPUs the run may use; empty leaves every process unpinned.
        mock: the CPUs the embedded mock runs on, used by clients only when there are not
            enough others.

    Returns:
        The placement; with ``count`` 1, the one process may use every allowed CPU but the
        mock's (all of them when the mock has every one).

    Raises:
        ValueError: ``count`` below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    allowed_set = sorted(set(allowed))
    mock_set = sorted(set(mock))
    if not allowed_set:
        return Placement(cpus=((),) * count, mock=tuple(mock_set))
    free = [c for c in allowed_set if c not in mock_set]
    shared = [c for c in allowed_set if c in mock_set]
    order = free + shared  # the mock's CPUs last
    base = Placement(cpus=(), allowed=tuple(allowed_set), mock=tuple(mock_set))
    if count == 1:
        return _with(base, cpus=(tuple(free or allowed_set),), warning=_beside_mock(free, 1))
    if count <= len(order):
        chosen = order[:count]
        beside = sum(1 for c in chosen if c in mock_set)
        return _with(
            base,
            cpus=tuple((c,) for c in chosen),
            warning=_beside_mock(free, count) if beside else None,
        )
    cpus = tuple((order[k % len(order)],) for k in range(count))
    warning = (
        f"{count} client processes but only {len(order)} CPU(s) allowed "
        f"({_cpus(allowed_set)}): processes share CPUs and measure no better than "
        f"{len(order)}; use --processes {len(order)} or allow more CPUs (taskset, cpuset)"
    )
    return _with(base, cpus=cpus, warning=warning)


def _beside_mock(free: list[int], count: int) -> str | None:
    if len(free) >= count:
        return None
    if not free:
        return "the client shares its CPU with the embedded mock: allow the run another CPU"
    return (
        f"{count - len(free)} of {count} client processes share a CPU with the embedded mock "
        f"(only {len(free)} other CPU(s) allowed): the mock's send times and the client's "
        "arrivals may both be late"
    )


def _with(base: Placement, *, cpus: tuple[tuple[int, ...], ...], warning: str | None) -> Placement:
    return Placement(cpus=cpus, allowed=base.allowed, mock=base.mock, warning=warning)
