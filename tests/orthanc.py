"""A real Orthanc PACS for end-to-end DICOM tests, kept on loopback.

Debian 12's Orthanc (1.10) has no bind-address option: it listens on every interface. So a test
first calls :func:`enter_loopback_only_network`, which moves the test process into a network
namespace of its own where only ``lo`` exists, then starts :class:`OrthancServer` instances,
which inherit that namespace. Tests skip with :func:`orthanc_skip_reason` when either step is
impossible here (no ``orthanc`` package, no right to create a network namespace).

    pytestmark = pytest.mark.skipif(orthanc_skip_reason() is not None, reason=...)

    enter_loopback_only_network()
    with OrthancServer(tmp_path / "pacs") as pacs:
        ...  # C-STORE to 127.0.0.1:pacs.dicom_port, then pacs.instances()
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

# /usr/sbin is not on every PATH (a non-root login shell), but it is where Debian puts Orthanc.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])

_CLONE_NEWNET = 0x40000000  # <sched.h>; Python 3.11 has no os.unshare
_SIOCGIFFLAGS = 0x8913  # <linux/sockios.h>
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")  # struct ifreq: name, then ifr_flags in a 24-byte union

_entered_namespace = False


class OrthancError(RuntimeError):
    """Orthanc did not start, or the loopback-only network could not be set up."""


def orthanc_binary() -> str | None:
    """Path of Debian's ``Orthanc`` program, or None when the package is not installed."""
    return shutil.which("Orthanc", path=_SEARCH_PATH)


def orthanc_skip_reason() -> str | None:
    """None when Orthanc tests can run here; otherwise a one-line reason for skipping them."""
    if orthanc_binary() is None:
        return (
            "Debian's orthanc package is not installed (no `Orthanc` program): "
            "run `make system-deps` as root"
        )
    if not sys.platform.startswith("linux"):
        return "keeping Orthanc on loopback needs a Linux network namespace"
    if _entered_namespace:
        return None
    return _network_namespace_refusal()


# Tried in a child process, so that asking does not move the caller anywhere.
_PROBE = f"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.unshare({_CLONE_NEWNET:#x}) == 0 else ctypes.get_errno())
"""


@functools.cache
def _network_namespace_refusal() -> str | None:
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not check whether a network namespace can be created: {error}"
    if probe.returncode == 0:
        return None
    if probe.returncode == errno.EPERM and os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_SYS_ADMIN): run the tests as root"
    reason = os.strerror(probe.returncode) if 0 < probe.returncode < 256 else "unknown error"
    return (
        f"creating a network namespace is refused here ({reason}"
        f"{', although running as root' if os.geteuid() == 0 else ''}): "
        "a container without CAP_SYS_ADMIN?"
    )


def enter_loopback_only_network() -> None:
    """Move the calling process into a new network namespace in which only ``lo`` exists (up).

    Every child process started afterwards (Orthanc, the node under test) and every thread the
    calling thread starts afterwards inherit the namespace, so Orthanc's listen on all
    interfaces reaches loopback only, and nothing outside this process tree can connect to it.
    The move is for the rest of the process's life (there is no way back), and it concerns the
    calling thread: threads that already existed stay outside, so call this from the thread that
    runs the tests. A second call does nothing but check that the caller sees only ``lo``.
    """
    global _entered_namespace
    if not _entered_namespace:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OrthancError(f"unshare(CLONE_NEWNET) failed: {os.strerror(code)}")
        _entered_namespace = True
        _bring_loopback_up()
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        raise OrthancError(
            f"expected only the loopback interface in this network namespace, found {names} "
            "(was enter_loopback_only_network first called from another thread?)"
        )


def _bring_loopback_up() -> None:
    # The ioctl instead of `ip link set lo up`: no dependency on iproute2 being installed.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = _IFREQ.pack(b"lo", 0)
        _, flags = _IFREQ.unpack(fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OrthancServer:
    """One Orthanc process with its own configuration, database and storage under ``work_dir``.

    The ports are chosen once, at construction, so :meth:`stop` then :meth:`start` brings back
    the same PACS (same ports, same stored instances): "destination down, then up again".
    ``extra_config`` entries are added to (or replace) the configuration written by
    :meth:`start`, e.g. ``{"OverwriteInstances": True}``.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        extra_config: dict[str, Any] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.work_dir = Path(work_dir)
        self._aet = aet
        self._dicom_port = dicom_port or free_port()
        self._http_port = http_port or free_port()
        self._extra_config = dict(extra_config or {})
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    @property
    def aet(self) -> str:
        return self._aet

    @property
    def dicom_port(self) -> int:
        return self._dicom_port

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def url(self) -> str:
        """Base URL of the REST API, e.g. ``http://127.0.0.1:8042``."""
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def pid(self) -> int | None:
        """PID of the running Orthanc, None when stopped."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def config_path(self) -> Path:
        return self.work_dir / "orthanc.json"

    @property
    def log_path(self) -> Path:
        """Orthanc's own log (``--logfile``), appended to at each start."""
        return self.work_dir / "orthanc.log"

    @property
    def console_path(self) -> Path:
        """Orthanc's stdout and stderr, appended at each start (errors before logging starts)."""
        return self.work_dir / "orthanc-console.log"

    def configuration(self) -> dict[str, Any]:
        """The configuration :meth:`start` writes."""
        config: dict[str, Any] = {
            "Name": f"cemsynth-test-{self._aet}",
            "StorageDirectory": str(self.work_dir / "storage"),
            "IndexDirectory": str(self.work_dir / "index"),
            "DicomServerEnabled": True,
            "DicomAet": self._aet,
            "DicomPort": self._dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "HttpServerEnabled": True,
            "HttpPort": self._http_port,
            # Loopback only already (the namespace); this refuses other hosts even if it were not.
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,
            "Plugins": [],
            # Seconds before a study counts as stable: short, so a test need not wait a minute.
            "StableAge": 1,
            "ConcurrentJobs": 1,
            # No jobs carried over a restart: each start is the same clean server.
            "SaveJobs": False,
            "HttpThreadsCount": 4,
            "DicomThreadsCount": 2,
            "DicomAssociationCloseDelay": 0,
        }
        config.update(self._extra_config)
        return config

    def start(self) -> None:
        """Write the configuration, start Orthanc and wait until its REST API answers."""
        if self.running:
            raise OrthancError(f"Orthanc is already running (pid {self.pid})")
        binary = orthanc_binary()
        if binary is None:
            raise OrthancError(orthanc_skip_reason() or "no Orthanc program")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.configuration(), indent=2))
        with self.console_path.open("ab") as console:
            # Its own process group, so that a kill reaches Orthanc alone and all of it.
            self._process = subprocess.Popen(
                [binary, f"--logfile={self.log_path}", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                start_new_session=True,
            )
        self._client = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self._client is not None
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise OrthancError(
                    f"Orthanc exited with status {code} while starting\n{self.log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise OrthancError(
                    f"Orthanc's REST API did not answer within {self._startup_timeout:g} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        assert self._client is not None
        try:
            system = self._client.get("/system", timeout=1.0)
        except httpx.TransportError:
            return False
        if system.status_code != 200:
            return False
        # Orthanc starts its DICOM server before its HTTP server; checking costs little.
        try:
            socket.create_connection(("127.0.0.1", self._dicom_port), timeout=1.0).close()
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Orthanc cleanly: SIGTERM to its PID, SIGKILL to its process group after
        ``timeout`` seconds. Orthanc 1.10 needs about 3.5 s (its servers' polling intervals)."""
        process = self._detach()
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process)

    def kill(self) -> None:
        """Stop Orthanc at once with SIGKILL, as a crash would; :meth:`start` brings it back
        with what it had stored (SQLite recovers its index). For tests that do not need a
        clean shutdown, and for teardown, where the storage is thrown away."""
        process = self._detach()
        if process is not None and process.poll() is None:
            self._kill_group(process)

    def _detach(self) -> subprocess.Popen[bytes] | None:
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        return process

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        # ProcessLookupError: it exited between the check and the kill
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Orthanc's log and console output, for error messages."""
        parts = []
        for path in (self.log_path, self.console_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or "(no Orthanc log written)"

    def __enter__(self) -> OrthancServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # REST API helpers; see https://orthanc.uclouvain.be/api/ (Orthanc 1.10's subset).

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise OrthancError("Orthanc is not running")
        return self._client

    def get_json(self, path: str) -> Any:
        response = self._http().get(path)
        response.raise_for_status()
        return response.json()

    def post_json(self, path: str, body: Any) -> Any:
        response = self._http().post(path, json=body)
        response.raise_for_status()
        return response.json()

    def system(self) -> dict[str, Any]:
        return dict(self.get_json("/system"))

    def statistics(self) -> dict[str, Any]:
        """``/statistics``: CountPatients, CountStudies, CountSeries, CountInstances, sizes."""
        return dict(self.get_json("/statistics"))

    def patients(self) -> list[str]:
        """Orthanc identifiers (not PatientIDs) of the stored patients."""
        return list(self.get_json("/patients"))

    def studies(self) -> list[str]:
        return list(self.get_json("/studies"))

    def series(self) -> list[str]:
        return list(self.get_json("/series"))

    def instances(self) -> list[str]:
        return list(self.get_json("/instances"))

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        """The instance's tags by keyword, e.g. ``{"SOPInstanceUID": "1.2...", ...}``."""
        return dict(self.get_json(f"/instances/{instance_id}/simplified-tags"))

    def find_instances(self, **dicom_tags: str) -> list[dict[str, Any]]:
        """Instances matching every ``Keyword=value`` (Orthanc's wildcards allowed), expanded:
        each a dict with ``ID``, ``MainDicomTags``, ``ParentSeries``, ..."""
        query = {"Level": "Instance", "Query": dicom_tags, "Expand": True}
        return list(self.post_json("/tools/find", query))

    def instance_file(self, instance_id: str) -> bytes:
        """The DICOM file as Orthanc stored it."""
        response = self._http().get(f"/instances/{instance_id}/file")
        response.raise_for_status()
        return response.content

    def delete_all(self) -> None:
        """Delete every stored patient (and so every study, series, instance)."""
        for patient in self.patients():
            self._http().delete(f"/patients/{patient}").raise_for_status()
