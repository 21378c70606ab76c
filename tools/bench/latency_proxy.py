"""A TCP proxy on loopback that adds network round-trip time in front of a local server (fake-gcs-server).

Local servers answer in microseconds; Cloud Storage, seen from Cloud Run in the same region, answers in tens of
milliseconds. Measured on loopback alone, a serial copy looks almost as fast as a parallel one and a wasted round
trip costs nothing. This proxy gives every byte stream the latency of a real link:

- each chunk read from one side is delivered to the other `rtt / 2` seconds after it arrived, in order, without
  the delays adding up (a link's latency, not a slow server): one request and its answer cost one `rtt`;
- a new connection pays `connect_rtts` more round trips before its first byte goes through (TCP's handshake; TLS
  to a real endpoint would add one or two more), so a client that keeps its connections open gains what it would
  gain against the real service;
- no bandwidth limit, no loss: only latency.

    with LatencyProxy(("127.0.0.1", gcs_port), rtt=0.030) as proxy:
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.endpoint

Or as its own process (what the benchmark does, so the proxy never competes with the client for one GIL):
`python -m tools.bench.latency_proxy --target 127.0.0.1:PORT --rtt-ms 30` prints `listening 127.0.0.1:PORT` and
serves until SIGTERM or Ctrl-C (with `--exit-on-stdin-eof`, also once its parent closes its stdin or dies).

Loopback only: it refuses to listen on, or forward to, anything else.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import socket
import sys
import threading
import time
from typing import Any

_CHUNK = 256 * 1024


def _require_loopback(host: str, what: str) -> None:
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    if not loopback:
        raise ValueError(f"{what}: expected a loopback address, found {host!r}")


class LatencyProxy:
    """Forwards 127.0.0.1:<port> to `target`, adding `rtt` seconds per round trip (see the module docstring)."""

    def __init__(self, target: tuple[str, int], rtt: float, *, connect_rtts: int = 1, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if rtt < 0 or connect_rtts < 0:
            raise ValueError(f"rtt and connect_rtts: expected >= 0, found {rtt}, {connect_rtts}")
        _require_loopback(target[0], "target")
        _require_loopback(host, "host")
        self.target = target
        self.rtt = rtt
        self.connect_rtts = connect_rtts
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.connections = 0  # accepted so far
        self.chunks = 0  # read so far, both directions (each counted before it is passed on)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not running: call start() first")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, e.g. the value of STORAGE_EMULATOR_HOST."""
        return f"http://{self._host}:{self.port}"

    # -- in a thread of this process ---------------------------------------------------------------------------
    def start(self) -> "LatencyProxy":
        self._thread = threading.Thread(target=self._run_in_thread, name="latency-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"latency proxy did not start: {self._error}") from self._error
        return self

    def _run_in_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.listen())
        except BaseException as error:  # noqa: BLE001 - reported to start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._close_server())
        loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the proxy itself (any event loop) ---------------------------------------------------------------------
    async def listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port, backlog=512)

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, upstream_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handshake_until = time.monotonic() + self.connect_rtts * self.rtt
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, not_before=handshake_until),
                self._pump(upstream_reader, client_writer, not_before=0.0),
                return_exceptions=True,
            )
        except asyncio.CancelledError:  # the proxy is stopping: the connection just ends
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, not_before: float) -> None:
        """Delivers each chunk half a round trip after it arrived, in order; EOF travels the same way."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        one_way = self.rtt / 2

        async def deliver() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    writer.close()
                except (ConnectionError, OSError, RuntimeError):
                    pass

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                try:
                    data = await reader.read(_CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                if data:  # counted as it is read, so before the far side can see it
                    self.chunks += 1
                queue.put_nowait((max(time.monotonic() + one_way, not_before + one_way), data))
                if not data:
                    break
        finally:
            await delivering


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Add round-trip latency in front of a loopback TCP server.")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to (loopback only)")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round-trip time to add, in milliseconds")
    parser.add_argument("--connect-rtts", type=int, default=1, help="extra round trips a new connection pays")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent gone)")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    proxy = LatencyProxy((host, int(port)), args.rtt_ms / 1000.0, connect_rtts=args.connect_rtts, port=args.port)

    async def serve() -> None:
        await proxy.listen()
        print(f"listening 127.0.0.1:{proxy.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        if args.exit_on_stdin_eof:
            loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
        await stop.wait()
        await proxy._close_server()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
