"""Debian's chromium driven over the DevTools protocol on a pipe, for tests that click.

`--dump-dom` and `--screenshot` show one page; following links needs a browser that stays
open. `--remote-debugging-pipe` makes chromium read protocol commands from fd 3 and write
answers and events to fd 4, each a JSON text ended by NUL: no websocket client, no driver and
no downloaded browser build, the same binary and flags as the one-shot runs.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
COMMAND_TIMEOUT_S = 60


class BrowserError(AssertionError):
    """Chromium answered with an error, went away, or kept a test waiting too long."""


class Browser:
    """One headless chromium with one page; every method waits for its answer."""

    def __init__(self, chromium: str, profile: Path, window: tuple[int, int]) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.log = (profile / "chromium.log").open("w")
        # Chromium reads commands on fd 3 and answers on fd 4. The pipes go in as the child's
        # stdin and stdout and a shell moves them there: no Python runs between fork and exec
        # (preexec_fn is unsafe next to the threads a test may have running).
        command_read, self._command_write = os.pipe()
        self._answer_read, answer_write = os.pipe()
        self.process = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2',
                chromium,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}",
                "about:blank",
            ],
            stdin=command_read,
            stdout=answer_write,
            stderr=self.log,
            env={**os.environ, "HOME": str(profile)},
        )
        os.close(command_read)
        os.close(answer_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        try:
            page = next(target for target in self.call("Target.getTargets")["targetInfos"] if target["type"] == "page")
            self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            self.call("Page.enable")
        except BaseException:
            self.close()  # no browser left behind by a failed start
            raise

    # ------------------------------------------------------------------------ the protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answer_read], [], [], left)[0]:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._answer_read, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed its pipe (exit {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            return answer.get("result", {})

    def wait_for_event(self, method: str, timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        """The first `method` event not yet consumed (events that came before count)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._read_message(deadline))

    # --------------------------------------------------------------------------- the page

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _forget_loads(self) -> None:
        self.events = [event for event in self.events if event.get("method") != "Page.loadEventFired"]

    def goto(self, url: str) -> None:
        """Open `url` and wait until its load event."""
        self._forget_loads()
        answer = self.call("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self.wait_for_event("Page.loadEventFired")

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def click(self, selector: str) -> None:
        """Click the element's centre with the mouse, as a person would, and wait for the
        page it leads to (the click must navigate)."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector!r} on {self.url}")
        self._forget_loads()
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left" if kind != "mouseMoved" else "none",
                clickCount=1,
            )
        self.wait_for_event("Page.loadEventFired")

    def screenshot(self, path: Path, *, full_page: bool = True) -> bytes:
        """A PNG of the page (its whole height with `full_page`), written to `path`."""
        data = base64.b64decode(
            self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)["data"]
        )
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except BrowserError:
            pass  # already gone: the wait below reaps it
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._command_write)
        os.close(self._answer_read)
        self.log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
