"""The functions in a process of their own, so a fault can kill them outright (SIGKILL: no `except`, no `finally`,
no answer), as a Cloud Run instance dies when it runs out of memory or its host goes away.

    child = ChildFunctions(env, on_line=logs.write).start()   # `python -m localcloud.functions_host`
    child.base_url                                            # where the four targets answer now
    child.kill()                                              # the process and everything it was doing: gone
    child.start()                                             # a new instance, on a new port

Each start is a new instance: it reads the config and builds its clients afresh from `env` (the harness points
Storage and Slack at its fault proxies there). Its stderr (the functions' JSON log lines) goes to `on_line`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]


class ChildFunctions:
    def __init__(self, env: dict[str, str], *, on_line: Callable[[str], object]) -> None:
        self.env = dict(env)
        self.on_line = on_line
        self.base_url = ""
        self.starts = 0
        self.kills = 0
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> "ChildFunctions":
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                raise RuntimeError("the functions' process is already running")
            process = subprocess.Popen(
                [sys.executable, "-m", "localcloud.functions_host"], cwd=ROOT, env=self.env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
            self._process = process
            threading.Thread(target=self._drain, args=(process,), daemon=True, name="child-functions-log").start()
            assert process.stdout is not None
            line = process.stdout.readline()  # until the child says where it serves, or exits
            if not line.startswith("serving "):
                self._kill(process)
                raise RuntimeError(f"the functions' process did not start: {line.strip() or 'it exited'}")
            self.base_url = line.split(" ", 1)[1].strip()
            self.starts += 1
            return self

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.on_line(line)

    def kill(self) -> None:
        """SIGKILL to the whole process group, and wait until it is gone."""
        with self._lock:
            if self._process is not None:
                self._kill(self._process)
                self.kills += 1

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
