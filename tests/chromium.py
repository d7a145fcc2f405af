"""Headless Chromium for the page tests (Debian's `chromium` package; `make test` installs it when it can)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_OWN = re.compile(r"^https?://([a-z0-9-]+\.)*google\.com/")  # Chromium's own background calls, not the page's


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
