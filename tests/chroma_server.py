"""A real ``chroma run`` server for tests: on 127.0.0.1 only, a free port, and restartable on the same data folder.

Why restartable: the reliability tests stop (SIGTERM) or crash (SIGKILL) the server between and during ingest
batches and start it again on the same ``--path`` and port, to check that nothing acknowledged is lost.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a TCP socket listening on ``port`` (Linux ``/proc/net/tcp{,6}``), e.g. ``127.0.0.1``."""
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            if width == 8:
                out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                out.append(socket.inet_ntop(socket.AF_INET6, words))
    return out


class ChromaServer:
    """``chroma run --path <path> --host 127.0.0.1 --port <port>``; ``start``, ``stop`` (SIGTERM), ``kill`` (SIGKILL)."""

    def __init__(self, path: Path, log: Path | None = None, port: int | None = None):
        self.path = Path(path)
        self.log = Path(log) if log else self.path.with_name(self.path.name + ".log")
        self.host = HOST
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.exe = Path(sys.executable).with_name("chroma")
        if not self.exe.is_file():
            raise RuntimeError(f"the Chroma server CLI is missing ({self.exe}); pip install 'jepa-rag[chroma]'")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def start(self, timeout: float = 60) -> ChromaServer:
        import httpx

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.exe), "run", "--path", str(self.path), "--host", self.host, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"chroma server not ready after {timeout} s:\n{self.tail()}")
            time.sleep(0.05)

    def _end(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def stop(self) -> None:
        """Graceful: SIGTERM, wait (SIGKILL after 15 s)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL."""
        self._end(signal.SIGKILL)

    def restart(self, hard: bool = False) -> ChromaServer:
        (self.kill if hard else self.stop)()
        return self.start()

    def client(self):
        import chromadb

        return chromadb.HttpClient(host=self.host, port=self.port)


def serve(root: Path) -> Iterator[tuple[str, int]]:
    """Body of a pytest fixture: a server on ``root/data`` (log ``root/server.log``); yields ``(host, port)``.

    A server that does not come up fails the test (with its log tail); the server is always stopped afterwards.
    """
    import pytest

    try:
        server = ChromaServer(root / "data", log=root / "server.log").start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.host, server.port
    finally:
        server.stop()
