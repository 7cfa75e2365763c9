"""A private Docker engine for tests and benchmarks, and a Redis image built without any registry.

The engine is Debian's ``dockerd`` (package docker.io) started as root on its own socket, data-root, exec-root
and pidfile, with ``--bridge=none --iptables=false --ip6tables=false``, so it never touches the host's network or
a system-wide engine. Containers run with ``network_mode="host"`` and bind 127.0.0.1. No image can be pulled
here, so the Redis image is a rootfs tar of host binaries plus the libraries ``ldd`` lists, imported as-is.

The pytest fixtures around it are in ``tests/support/docker.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import docker.models.containers

from elasticache_migrate.testing.localredis import terminate

__all__ = [
    "DockerEngine",
    "build_redis_image",
    "engine_unavailable_reason",
    "run_redis_container",
    "start_engine",
]

# dockerd finds containerd, runc and docker-init on PATH; /usr/sbin is not on every user's PATH.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_CAP_SYS_ADMIN = 21
_PR_SET_PDEATHSIG = 1
# sun_path is 108 bytes on Linux; leave room for the terminating NUL and a margin.
_MAX_SOCKET_PATH = 100
_IMAGE_LABEL = "org.redis-elasticache-migrate.rootfs-sha256"
_IMAGE_PATH_ENV = "PATH=/usr/local/bin:/usr/bin:/bin"


def _search_path() -> str:
    parts = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(parts + [d for d in _SBIN_DIRS if d not in parts])


def _cap_effective() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def engine_unavailable_reason() -> str | None:
    """Why a private dockerd cannot be started on this machine, or None when it can."""
    if sys.platform != "linux":
        return f"dockerd needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "not running as root (dockerd needs root)"
    path = _search_path()
    for binary, package in (("dockerd", "docker.io"), ("containerd", "containerd"), ("runc", "runc")):
        if shutil.which(binary, path=path) is None:
            return f"no {binary} binary on PATH (apt-get install {package})"
    if not _cap_effective() >> _CAP_SYS_ADMIN & 1:
        return "CAP_SYS_ADMIN is missing (an unprivileged container?), dockerd cannot mount or clone"
    return None


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _dockerd_pids_on(base_url: str) -> list[int]:
    """Live dockerd processes listening on ``base_url`` (from any earlier run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if args and Path(args[0]).name == "dockerd" and base_url in args and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait, then SIGKILL; returns True when the process had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10)
    return True


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child after fork imports nothing


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM dockerd when the thread that started it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class DockerEngine:
    """A dockerd this process started: its socket, directories and pid."""

    base_url: str
    root: Path
    pid: int = 0
    exec_root: Path = Path()
    log_path: Path = Path()
    start_timeout: float = 60
    die_with_parent: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def socket_path(self) -> Path:
        return Path(self.base_url.removeprefix("unix://"))

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A docker SDK client for this engine (the caller closes it)."""
        return docker.DockerClient(base_url=self.base_url, timeout=timeout)

    def _reap_leftovers(self) -> None:
        """Stop a dockerd an earlier, crashed run left on this socket, and clear its stale socket."""
        for pid in _dockerd_pids_on(self.base_url):
            if _terminate(pid, 60):
                self._kill_orphan_containerd()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._clear_exec_root()

    def _clear_exec_root(self) -> None:
        """Remove the exec-root (runtime state only) once dockerd is gone, with the netns mount it leaves."""
        prefix = f"{self.exec_root}/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def _kill_orphan_containerd(self) -> None:
        """After a SIGKILLed dockerd its containerd may live on; end it so the next start is clean."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.exec_root / "containerd" / "containerd.pid").read_text().strip())
            if any(Path(arg).name == "containerd" for arg in _cmdline(pid)[:1]):
                _terminate(pid, 10)

    def _start(self) -> None:
        self._reap_leftovers()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        args = [
            shutil.which("dockerd", path=_search_path()) or "dockerd",
            "-H", self.base_url,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs",
            "--shutdown-timeout", "10",
        ]  # fmt: skip
        env = {**os.environ, "PATH": _search_path()}
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which stops us cleanly
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise RuntimeError(
                    f"dockerd exited with code {code} while starting; log {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            if self.socket_path.exists():
                with contextlib.suppress(Exception):
                    client = self.client(timeout=5)
                    try:
                        if client.ping():
                            return
                    finally:
                        client.close()
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"dockerd did not answer on {self.base_url} within {self.start_timeout:.0f} s;"
                    f" log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 60) -> None:
        """Stop dockerd (SIGTERM, SIGKILL after ``timeout``) and wait for it; does nothing if stopped."""
        proc, self._proc = self._proc, None
        killed = running = False
        if proc is not None:
            if running := proc.poll() is None:
                killed = terminate(proc, timeout)
        elif running := bool(self.pid) and self.base_url in _cmdline(self.pid):
            killed = _terminate(self.pid, timeout)
        if killed:  # a clean exit removes the socket and stops containerd; a SIGKILL does neither
            self._kill_orphan_containerd()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        if running:
            self._clear_exec_root()

    def restart(self) -> None:
        """Stop and start again on the same socket, data-root and exec-root; containers stay defined."""
        self.stop()
        self._start()


def start_engine(workdir: Path, timeout: float = 60, *, die_with_parent: bool = True) -> DockerEngine:
    """Start a private dockerd under ``workdir`` and wait until it answers ``/_ping``.

    The socket is ``workdir/docker.sock`` (or a short path in /tmp when that would be too long for a unix
    socket), the data-root ``workdir/data``, the log ``workdir/dockerd.log``; the exec-root, which holds
    containerd's socket, is ``/tmp/dx-<hash of workdir>`` so it stays short and the same across restarts.
    An engine an earlier crashed run left on the same socket is stopped first. With ``die_with_parent``
    dockerd gets SIGTERM when the thread that started it ends (so a killed test run leaks no engine);
    pass False when starting it from a short-lived thread.
    """
    root = workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    sock = root / "docker.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        sock = Path(f"/tmp/dx-{digest}.sock")
    engine = DockerEngine(
        base_url=f"unix://{sock}",
        root=root,
        exec_root=Path(f"/tmp/dx-{digest}"),
        log_path=root / "dockerd.log",
        start_timeout=timeout,
        die_with_parent=die_with_parent,
    )
    engine._start()
    return engine


# --------------------------------------------------------------------------------------------- image


def _linked_libraries(binary: Path) -> list[str]:
    """Absolute paths of the libraries (and loader) ``ldd`` lists for ``binary``; [] when static."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    if "not a dynamic executable" in output or "statically linked" in output:
        return []
    if result.returncode != 0:
        raise RuntimeError(f"ldd {binary} failed: {output.strip()}")
    libraries = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RuntimeError(f"{binary} needs a library the host lacks: {line}")
        target = line.split("=>", 1)[1] if "=>" in line else line
        path = target.strip().split(" (", 1)[0].strip()
        if path.startswith("/"):  # linux-vdso.so.1 has no file
            libraries.append(path)
    return libraries


def _rootfs_files(server: Path, extra_binaries: Iterable[Path]) -> dict[str, Path]:
    """Destination path in the image → host file (symlinks resolved) for every binary and library."""
    binaries = {
        "/usr/bin/redis-server": server,
        "/usr/bin/redis-cli": Path("/usr/bin/redis-cli"),
        "/bin/sh": Path("/bin/sh"),
    }
    for extra in extra_binaries:
        binaries[f"/usr/local/bin/{extra.name}"] = extra
    files: dict[str, Path] = {}
    for dest, source in binaries.items():
        if not source.is_file():
            raise FileNotFoundError(f"{source} (wanted at {dest} in the image) does not exist")
        # resolved, so a server symlinked to redis-check-rdb (Debian) still runs as redis-server
        files[dest] = source.resolve()
        for library in _linked_libraries(source):
            files.setdefault(library, Path(library).resolve())
    return files


_ETC_FILES = {
    "/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "/etc/group": b"root:x:0:\n",
    "/etc/hosts": b"127.0.0.1 localhost\n",
    "/etc/nsswitch.conf": b"hosts: files\n",
}


def _rootfs_tar(files: dict[str, Path]) -> bytes:
    """A rootfs tar: the files at their destinations, their parent dirs, /data, /tmp and a little /etc."""
    buffer = io.BytesIO()
    dirs = {"/data": 0o755, "/tmp": 0o1777, "/root": 0o700, "/etc": 0o755}
    for dest in [*files, *_ETC_FILES]:
        for parent in PurePosixPath(dest).parents:
            if str(parent) != "/":
                dirs.setdefault(str(parent), 0o755)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(dirs):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, dirs[path], int(time.time())
            tar.addfile(info)
        for dest, source in sorted(files.items()):
            info = tar.gettarinfo(str(source), arcname=dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with source.open("rb") as data:
                tar.addfile(info, data)
        for dest, content in _ETC_FILES.items():
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.size, info.mode, info.mtime = len(content), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _fingerprint(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for dest, source in sorted(files.items()):
        digest.update(dest.encode() + b"\0")
        with source.open("rb") as data:
            digest.update(hashlib.file_digest(data, "sha256").digest())
    return digest.hexdigest()


def _split_tag(tag: str) -> tuple[str, str]:
    repository, sep, version = tag.rpartition(":")
    if not sep or "/" in version:  # no tag, or the colon belongs to a registry host:port
        return tag, "latest"
    return repository, version


def build_redis_image(
    client: docker.DockerClient,
    *,
    tag: str = "local/redis-src:7.0",
    server: Path = Path("/usr/bin/redis-server"),
    extra_binaries: Sequence[Path] = (),
) -> str:
    """Import an image holding ``server`` as /usr/bin/redis-server, redis-cli and sh; returns ``tag``.

    Extra binaries land in /usr/local/bin under their own names. The image is reused when ``tag`` exists
    and was built from the same files (a label holds their hash); otherwise it is imported again. Works
    for any static or dynamic Linux redis-server, e.g. an old 3.x build.
    """
    files = _rootfs_files(server, extra_binaries)
    fingerprint = _fingerprint(files)
    with contextlib.suppress(docker.errors.ImageNotFound):
        if client.images.get(tag).labels.get(_IMAGE_LABEL) == fingerprint:
            return tag
    repository, version = _split_tag(tag)
    output = client.api.import_image_from_data(
        _rootfs_tar(files),
        repository=repository,
        tag=version,
        changes=[
            f"ENV {_IMAGE_PATH_ENV}",
            "WORKDIR /data",
            'CMD ["redis-server", "--bind", "127.0.0.1"]',
            f"LABEL {_IMAGE_LABEL}={fingerprint}",
        ],
    )
    for line in str(output).splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise RuntimeError(f"importing {tag} failed: {message['error']}")
    client.images.get(tag)  # raises ImageNotFound if the import silently did nothing
    return tag


# ----------------------------------------------------------------------------------------- container


def _dir_tar(path: str) -> bytes:
    """A tar of ``path`` and its parents as directories, for ``put_archive("/")``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in [*reversed(PurePosixPath(path).parents), PurePosixPath(path)]:
            if str(directory) != "/":
                info = tarfile.TarInfo(str(directory).lstrip("/"))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                tar.addfile(info)
    return buffer.getvalue()


def _answers_ping(port: int) -> bool:
    """A raw PING, so that any Redis version (and one with requirepass) counts as up once it answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def run_redis_container(
    client: docker.DockerClient,
    image: str,
    *,
    name: str,
    port: int,
    dir: str = "/data",
    dbfilename: str = "dump.rdb",
    extra_args: Sequence[str] = (),
    timeout: float = 30,
) -> docker.models.containers.Container:
    """Run redis-server in a host-network container on 127.0.0.1:``port``; returns once PING answers.

    A container already named ``name`` is removed first. ``dir`` is created in the container before it
    starts, so any path works without being baked into the image.
    """
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", dir,
               "--dbfilename", dbfilename, *extra_args]  # fmt: skip
    container = client.containers.create(image, command=command, name=name, network_mode="host")
    if dir.startswith("/"):
        container.put_archive("/", _dir_tar(dir))
    container.start()
    deadline = time.monotonic() + timeout
    while not _answers_ping(port):
        container.reload()
        if container.status not in ("created", "running"):
            logs = container.logs(tail=30).decode(errors="replace")
            raise RuntimeError(f"container {name} is {container.status} before answering PING:\n{logs}")
        if time.monotonic() > deadline:
            logs = container.logs(tail=30).decode(errors="replace")
            raise TimeoutError(f"redis in container {name} did not answer on 127.0.0.1:{port}:\n{logs}")
        time.sleep(0.1)
    container.reload()
    return container


# ------------------------------------------------------------------------------------------- fixtures
