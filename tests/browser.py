"""A real headless browser for the tests: Debian's Chromium, driven from its command line.

`render(page)` loads a local HTML file in `chromium --headless` with every network lookup refused (a page that
needed the network would show it), and hands back the DOM as the browser built it (`--dump-dom`) and a screenshot
of what it painted. No browser on the machine: the test is skipped with the reason (`apt-get install chromium`).
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser")
WINDOW = (1280, 2400)
_FLAGS = (
    "--headless", "--disable-gpu", "--no-sandbox",  # the sandbox needs user namespaces, absent when run as root in CI
    "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
    "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


@dataclass(frozen=True)
class Rendered:
    dom: str  # the document as the browser built it
    screenshot_size: tuple[int, int]  # width, height of the PNG it painted


def browser() -> str:
    """The Chromium binary, or a skip saying how to get one."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine: install Debian's package (apt-get install chromium) to run the "
                "browser tests; .ci/run installs it")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path}: the browser wrote no PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def render(page: Path, timeout: float = 90.0) -> Rendered:
    binary = browser()
    with tempfile.TemporaryDirectory(prefix="tagship-chromium-") as home:
        env = {**os.environ, "HOME": home}
        common = (binary, *_FLAGS, f"--user-data-dir={home}/profile", f"--crash-dumps-dir={home}/crashes")
        url = page.resolve().as_uri()
        dumped = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=timeout,
                                env=env, check=False)
        if dumped.returncode != 0 or "<html" not in dumped.stdout:
            raise AssertionError(f"chromium exited {dumped.returncode}: {dumped.stderr[-2000:]}")
        shot = Path(home) / "page.png"
        painted = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True,
                                 timeout=timeout, env=env, check=False)
        if painted.returncode != 0 or not shot.exists():
            raise AssertionError(f"chromium painted nothing (exit {painted.returncode}): {painted.stderr[-2000:]}")
        return Rendered(dumped.stdout, _png_size(shot))
