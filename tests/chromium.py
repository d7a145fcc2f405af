"""Headless Chromium for the page tests (Debian's `chromium` package; `make test` installs it when it can)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_OWN = re.compile(r"^https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com)/")  # Chromium's own background calls


def offline_visit(page: Path, tmp_path: Path) -> tuple[set[str], str]:
    """(URLs requested while showing `page`, less Chromium's own background calls; the DOM), with the network shut."""
    log = tmp_path / f"{page.stem}-net.json"
    result = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9",
                             "--host-resolver-rules=MAP * ~NOTFOUND", f"--log-net-log={log}",
                             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                            capture_output=True, text=True, timeout=180)
    urls = set(re.findall(r'"url":"([^"]+)"', log.read_text()))
    return {u for u in urls if not BROWSER_OWN.match(u) and not u.startswith(("file:", "data:", "blob:"))}, result.stdout


def _above_9(fd: int) -> int:
    """`fd` moved to a descriptor numbered 10 or more."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevTools:
    """One headless Chromium driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`).

    Standard library only: Chromium reads null-terminated JSON commands on fd 3 and answers on fd 4.
    `events` keeps every event received, so a test can read console errors and exceptions afterwards.
    """

    def __init__(self, profile: Path, width: int = 1200, height: int = 1600):
        # Both ends the browser gets sit above fd 9, so moving them onto fds 3 and 4 overwrites neither.
        self._to_r, self._to_w = (_above_9(fd) for fd in os.pipe())
        self._from_r, self._from_w = (_above_9(fd) for fd in os.pipe())
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", f"--window-size={width},{height}"]
        # The shell puts the pipe ends at the fds Chromium expects (3: commands in, 4: answers out).
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{self._to_r} 4>&{self._from_w} {self._to_r}<&- {self._from_w}>&-',
             CHROMIUM, *flags, "about:blank"],
            pass_fds=(self._to_r, self._from_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self._to_r), os.close(self._from_w)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=self.session)
        self.send("Emulation.setDeviceMetricsOverride", session=self.session, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._from_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        """Send one command and return its result, keeping the events that arrive meanwhile."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_w, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        """The first event named `event` received so far or within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for message in self.events:
            if message.get("method") == event:
                return message
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == event:
                return message

    def page(self, method: str, **params) -> dict:
        """A command to the page this browser opened."""
        return self.send(method, session=self.session, **params)

    def evaluate(self, expression: str, timeout: float = 60):
        """The JSON value of a JavaScript expression (a promise is awaited); raises on a page exception."""
        result = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=timeout * 1000)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, clip: dict | None = None) -> bytes:
        """PNG of the page, or of `clip` ({x, y, width, height} in page CSS pixels), beyond the viewport too."""
        params = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.page("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_w), os.close(self._from_r)

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: In the page: waits until every plotly figure is drawn, then describes each one (page CSS pixels): its box;
#: for each axis pair tied by `scaleanchor`, the panel's size in pixels and the pixels per data unit of each axis
#: (and whether it shows only scatter traces: arrows, a geometry panel); the boxes of its text labels
#: (annotations and trace text); and how many pixels of it its container cuts off on the right.
_DESCRIBE_FIGURES = """(async () => {
  const figures = () => [...document.querySelectorAll('.plotly-graph-div')];
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && !figures().every(f => f._fullLayout && f.querySelector('svg.main-svg')))
    await new Promise(resolve => setTimeout(resolve, 100));
  const box = e => { const r = e.getBoundingClientRect();
                     return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; };
  return figures().map(f => {
    const layout = f._fullLayout || {};
    const anchored = Object.keys(layout).filter(k => /^yaxis\\d*$/.test(k) && layout[k].scaleanchor)
      .map(k => { const y = layout[k], x = layout[y.scaleanchor.replace('x', 'xaxis')];
                  const types = (f._fullData || []).filter(t => t.yaxis === y._id).map(t => t.type);
                  return {axis: k, x_px: x._length, y_px: y._length, x_scale: Math.abs(x._m), y_scale: Math.abs(y._m),
                          ratio: y.scaleratio, geometry: types.length > 0 && types.every(t => t === 'scatter')}; });
    const labels = [...f.querySelectorAll('g.annotation-text-g text, g.textpoint text')]
      .filter(t => t.textContent.trim()).map(t => ({text: t.textContent, ...box(t)}))
      .filter(b => b.width > 0 && b.height > 0);
    const title = layout.title && layout.title.text || '';
    // The right edge of what is shown: an ancestor that hides or scrolls its overflow cuts a wider figure.
    let shown = Infinity;
    for (let e = f.parentElement; e; e = e.parentElement)
      if (getComputedStyle(e).overflowX !== 'visible') shown = Math.min(shown, e.getBoundingClientRect().right + scrollX);
    return {title, box: box(f), anchored, labels, cut_px: Math.max(0, box(f).x + box(f).width - shown)};
  });
})()"""


def describe_figures(page: Path, profile: Path) -> tuple[list[dict], list[str], bytes, str]:
    """(each plotly figure on `page`, described as above with its screenshot under "png"; the page's console
    errors and uncaught exceptions; a screenshot of the first screen; the DOM after scripts ran), all from one
    headless Chromium."""
    with DevTools(profile) as browser:
        browser.page("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired", timeout=120)
        figures = browser.evaluate(_DESCRIBE_FIGURES, timeout=60)
        for figure in figures:
            figure["png"] = browser.screenshot(figure["box"])
        first_screen = base64.b64decode(browser.page("Page.captureScreenshot", format="png")["data"])
        dom = browser.evaluate("document.documentElement.outerHTML")
    errors = []
    for event in browser.events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(json.dumps(params.get("args"))[:500])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            text = params["entry"].get("text", "")
            if "Content Security Policy" not in text:     # the site's policy blocks outside scripts by design
                errors.append(text[:500])
    return figures, errors, first_screen, dom
