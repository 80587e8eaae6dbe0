"""A throwaway PostgreSQL cluster and an `mlflow server` backed by it, both on loopback, for
the tests that need a real tracking server.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user (or
``mtl-postgres``, created when neither exists). The server binaries are looked up on PATH,
then in ``/usr/lib/postgresql/<version>/bin``; when they are missing the tests fail saying so
(CI must run them), they are not skipped.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

POSTGRES_USER = "mtl"
POSTGRES_PASSWORD = "mtl-test-password"
DATABASE = "mlflow"
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: on PATH, in
    ``/usr/lib/postgresql/<version>/bin``, else the build the ``pgserver`` wheel carries (a dev
    dependency, so a clean machine has one).

    Raises:
        RuntimeError: none of them is there.
    """
    found = shutil.which("pg_ctl")
    candidates = ([Path(found).parent] if found else []) + sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), key=lambda p: _version(p.parent.name), reverse=True)
    candidates += _wheel_bin()
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed: not on PATH, nor in "
                       "/usr/lib/postgresql/*/bin, nor in the pgserver package (pip install -e '.[dev]'); install "
                       "them (Debian: apt-get install postgresql) to run the tracking-server tests")


def _wheel_bin() -> list[Path]:
    """pgserver's ``pginstall/bin``. As root the cluster runs as another user, who may not reach
    the virtual environment (a checkout under /root), so the installation is copied once to a
    world-readable folder first."""
    try:
        import pgserver
    except ImportError:
        return []
    install = Path(pgserver.__file__).parent / "pginstall"
    if not (install / "bin").is_dir():
        return []
    if os.geteuid() != 0:
        return [install / "bin"]
    # The binaries find their libraries at $ORIGIN/../../../pgserver.libs: copy both, side by side.
    copy = Path(tempfile.gettempdir()) / f"mtl-pgserver-{os.getpid()}"
    if not copy.exists():
        site = install.parent.parent
        for part in ("pgserver/pginstall", "pgserver.libs"):
            if (site / part).exists():
                shutil.copytree(site / part, copy / part, symlinks=True)
        atexit.register(shutil.rmtree, copy, True)
        for folder, _, files in os.walk(copy):
            os.chmod(folder, 0o755)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o555)
    return [copy / "pgserver" / "pginstall" / "bin"]


def _version(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return 0.0


def _owner() -> str | None:
    """The user the cluster runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "mtl-postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "mtl-postgres"],
                   check=True)
    return "mtl-postgres"


class Postgres:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port``."""

    def __init__(self):
        self.bin = postgres_bin()
        self.owner = _owner()
        self.root = Path(tempfile.mkdtemp(prefix="mtl-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        if self.owner:
            entry = pwd.getpwnam(self.owner)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        done = subprocess.run(list(args), user=self.owner, cwd=self.root, **kwargs)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done

    def start(self) -> "Postgres":
        password = self.root / "password"
        password.write_text(POSTGRES_PASSWORD + "\n")
        if self.owner:
            entry = pwd.getpwnam(self.owner)
            os.chown(password, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", POSTGRES_USER, f"--pwfile={password}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-instructions")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.create_database(DATABASE)
        return self

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=POSTGRES_USER,
                                      password=POSTGRES_PASSWORD, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return self.uri(name)

    def uri(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg2://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1:``port`` with a database backend and proxied artifacts.

    :meth:`kill` stops it the hard way (SIGKILL to its process group: the server and its
    workers), :meth:`start` starts it again on the same port and stores.
    """

    def __init__(self, backend_uri: str, artifacts: str | os.PathLike, port: int | None = None):
        self.backend_uri, self.artifacts = backend_uri, str(artifacts)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log = Path(self.artifacts).with_suffix(".log")

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> "MlflowServer":
        Path(self.artifacts).mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "a")
        self.process = subprocess.Popen(
            [MLFLOW, "server", "--backend-store-uri", self.backend_uri, "--artifacts-destination", self.artifacts,
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": ""})
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.process.returncode}): {self.log.read_text()[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"mlflow server did not answer within {timeout:g}s: {self.log.read_text()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while self.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)
