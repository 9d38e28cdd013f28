"""How ``run`` and ``locust`` count the signals that stop them.

SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker stop``, a cancelled CI job) stop a load
alike: the first starts no new requests and lets those in flight finish within the grace
period, a second cancels them at once. The command then exits with 128 + the number of the
first signal, the shell's convention: 130 after Ctrl-C, 143 after SIGTERM.

``timeout`` sends its SIGTERM to the command and then again to the command's whole process
group, so one SIGTERM from it may arrive twice; a SIGTERM that comes within
``SAME_SIGTERM_S`` of the last one counted is therefore the same request, not a second one.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

__all__ = ["SAME_SIGTERM_S", "STOP_SIGNALS", "StopSignals"]

#: The signals that stop a load.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: A SIGTERM this soon after the one before repeats it (``timeout`` sends two).
SAME_SIGTERM_S = 1.0


class StopSignals:
    """The stop signals a command has received.

    Args:
        clock: seconds on a monotonic clock, ``time.monotonic`` by default.

    Attributes:
        received: the signals that counted, in order (a repeated SIGTERM is left out).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.received: list[signal.Signals] = []
        self._clock = clock
        self._last_sigterm_s: float | None = None

    def add(self, signum: int) -> int:
        """Count a signal.

        Returns:
            Which stop it asks for: 1 (finish what is in flight), 2 or more (cancel now),
            or 0 when it repeats the SIGTERM counted just before it.
        """
        signum = signal.Signals(signum)
        if signum == signal.SIGTERM:
            now_s = self._clock()
            last_s = self._last_sigterm_s
            if last_s is not None and now_s - last_s < SAME_SIGTERM_S:
                return 0
            self._last_sigterm_s = now_s
        self.received.append(signum)
        return len(self.received)

    @property
    def exit_code(self) -> int:
        """128 + the number of the first signal (130: Ctrl-C, 143: SIGTERM); 0 before any."""
        return 128 + self.received[0] if self.received else 0
