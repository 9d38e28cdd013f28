"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

Chromium reads commands from its file descriptor 3 and writes answers and events to 4,
each a JSON message ending in a NUL byte; no port is opened. Every read has a deadline,
and waiting for something in the page happens inside the page (a promise that checks
a condition until it holds or its time is up), so the test never sleeps.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.browser.conftest import CHROMIUM_FLAGS

#: Checks ``CONDITION`` (a JS function body returning a value) until it is truthy.
WAIT_JS = """new Promise((resolve) => {
  const end = Date.now() + %(timeout_ms)d;
  const check = async () => {
    let value = null;
    try { value = await (async () => { %(condition)s })(); } catch (e) { value = null; }
    if (value || Date.now() > end) resolve(value || null); else setTimeout(check, 100);
  };
  check();
})"""


class DevTools:
    """One headless Chromium and one page of it."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_r, commands_w = os.pipe()
        answers_r, answers_w = os.pipe()

        def plumb() -> None:  # in the child: the pipe ends where Chromium expects them
            os.dup2(commands_r, 3)
            os.dup2(answers_w, 4)

        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--window-size=1400,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=plumb,
            pass_fds=(3, 4), start_new_session=True,
        )  # fmt: skip
        os.close(commands_r)
        os.close(answers_w)
        self._out, self._in = commands_w, answers_r
        self._buffer = b""
        self._ids = itertools.count(1)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def send(self, method: str, *, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send a command (to the page once attached) and return its result."""
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if getattr(self, "_session", None):
            message["sessionId"] = self._session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == number:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str, *, timeout_s: float = 30.0) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True, timeout_s=timeout_s)  # fmt: skip
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, *, timeout_s: float = 20.0) -> Any:
        """The first truthy value of ``condition`` (a JS function body), or None in time."""
        js = WAIT_JS % {"condition": condition, "timeout_ms": int(timeout_s * 1000)}
        return self.evaluate(js, timeout_s=timeout_s + 10)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        os.close(self._out)  # Chromium exits when its pipe closes; make sure it does
        os.close(self._in)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
