"""A child process's life tied to its parent's: no child outlives the command that started it.

The parent may end in any way: a clean exit, an exception, SIGTERM from ``timeout``, ``docker
stop`` or a cancelled CI job, or SIGKILL, which runs no clean-up at all. Two mechanisms,
both set up by the child:

* **A pipe** (every platform). The parent creates a pipe, hands the read end to the child
  and keeps the write end without ever writing to it. However the parent ends, the kernel
  closes its end, and the child's read returns end of file: ``watch_pipe`` then calls the
  child's ``on_gone``. The write end must reach no other process, or end of file waits for
  that one too; ``os.pipe`` makes both ends non-inheritable, so only a ``pass_fds`` hands
  the read end over.
* **The parent-death signal** (Linux). ``die_with_parent`` asks the kernel, with
  ``prctl(PR_SET_PDEATHSIG)``, to send the child a signal when its parent ends. The parent
  may already have ended before the call, and then no signal would ever come, so the call
  is followed by a check that the child's parent is still the pid it was given; if not,
  the child sends itself the signal at once.

PR_SET_PDEATHSIG fires when the parent *thread* that started the child ends, not when its
process does. The parent must therefore start such a child from a thread that lives as long
as the child should: the main thread, or the thread that enters and leaves the context
manager around the child (``harness.servers.embedded.embedded_mock``), or the one that awaits the
children (``harness.load.processes``), never a short-lived worker thread of a pool.

``python -m harness.lifeline PARENT_PID MODULE [ARG...]`` runs ``python -m MODULE ARG...``
tied to its parent by the signal, for a program that cannot call ``die_with_parent`` itself
(locust). Nothing but the standard library's ``ctypes`` runs before that program, so gevent
still patches the standard library before ``threading`` is imported: this module imports
``threading`` only in ``watch_pipe``, and does not log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess
    import threading

__all__ = ["PR_SET_PDEATHSIG", "die_with_parent", "end_process", "main", "watch_pipe"]

#: ``<linux/prctl.h>``: the signal the kernel sends a process when its parent thread ends.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent ends (Linux).

    Call it as early as the child can. If the parent is no longer ``parent_pid`` once the
    request is in place (it ended before, and the child was handed to another process),
    this process sends itself ``signum`` now, as the kernel would have done.

    Args:
        parent_pid: the pid of the process that started this one, as that process saw
            its own pid (``os.getpid()`` in the parent).
        signum: the signal to receive; its handler decides how the child stops.

    Returns:
        True when the request is in place; False where there is none (not Linux, or
        prctl failed), and then only a pipe (``watch_pipe``) ties the two lives.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter links
    if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(int(signum)), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent ended before the request was in place
        os.kill(os.getpid(), signum)
    return True


def watch_pipe(fd: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call ``on_gone`` once the write end of the pipe ``fd`` reads from is closed.

    A daemon thread reads ``fd`` (bytes written to the pipe are read and dropped) until
    end of file, or until a read fails, which cannot tell that the parent lives either;
    it then closes ``fd`` and calls ``on_gone`` from that thread: hand work over to the
    main thread from there (a signal to this process, ``call_soon_threadsafe``).

    Args:
        fd: the read end of a pipe whose write end the parent holds.
        on_gone: what to do when the parent has ended or let go of the child.

    Returns:
        The started thread.

    Raises:
        OSError: ``fd`` is not an open file descriptor.
    """
    import threading  # here, not above: see the module's docstring

    os.fstat(fd)  # a bad descriptor fails here, in the caller, not silently in the thread

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        with contextlib.suppress(OSError):
            os.close(fd)
        on_gone()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


#: How long a child may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


def end_process(process: subprocess.Popen[Any], *, wait_s: float = 0.0) -> None:
    """End a child: let it exit by itself for ``wait_s``, then SIGTERM it, then, after
    ``STOP_GRACE_S`` more, SIGKILL it; it is reaped either way."""
    import subprocess  # here, not above: this module must not import threading

    try:
        process.wait(timeout=wait_s)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE_S)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m harness.lifeline PARENT_PID MODULE [ARG...]``: run ``MODULE`` as
    ``python -m`` does, in this process, which gets SIGTERM when its parent ends (Linux)."""
    parent_pid, module, *arguments = sys.argv[1:] if argv is None else argv
    die_with_parent(int(parent_pid), signal.SIGTERM)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
