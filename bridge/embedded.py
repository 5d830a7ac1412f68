"""The embedded default: a private Postgres cluster in a folder, for local runs
and tests. Binaries come from the `pgserver` wheel, else the system's
PostgreSQL. Postgres refuses to run as root, so as root the cluster runs as an
unprivileged user (the Debian `postgres` user, or one created for it).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from bridge.errors import BridgeError

log = logging.getLogger(__name__)

SERVICE_USER = "bridgepg"


class EmbeddedPostgresError(BridgeError, RuntimeError):
    """The local cluster could not be created or started."""

    code = "embedded_postgres"


def _candidate_bin_dirs() -> Iterator[Path]:
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        yield Path(spec.origin).parent / "pginstall" / "bin"
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            yield Path(out.stdout.strip())
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        yield Path(found)


def _run_as_user() -> pwd.struct_passwd | None:
    """The account to run Postgres as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SERVICE_USER)


def _open_path_for_others(path: Path) -> None:
    """Lets an unprivileged user traverse every folder above `path`."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A cluster in `data_dir/pg`, listening on 127.0.0.1:`port` only, trust auth.
    `superuser` names the bootstrap superuser (Supabase's images use
    `supabase_admin`); `bin_dir` picks the binaries instead of the search."""

    def __init__(
        self,
        data_dir: str | Path,
        port: int,
        *,
        durable: bool = True,
        extra_settings: Mapping[str, str] | None = None,
        superuser: str = "postgres",
        bin_dir: Path | None = None,
    ) -> None:
        self.root = Path(data_dir).resolve()
        self.pgdata = self.root / "pg"
        self.port = port
        self.durable = durable
        self.extra_settings = dict(extra_settings or {})
        self.superuser = superuser
        self.started_here = False  # `start` started it (rather than found it running)
        self._user = _run_as_user()
        self._bin = self._find_binaries([bin_dir] if bin_dir else _candidate_bin_dirs())

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{database}"

    def _find_binaries(self, candidates: Iterable[Path]) -> Path:
        tried = []
        for bindir in candidates:
            tried.append(str(bindir))
            if not (bindir / "postgres").exists() or not (bindir / "initdb").exists():
                continue
            if self._user is not None:
                _open_path_for_others(bindir)
            probe = self._run([str(bindir / "postgres"), "--version"], check=False)
            if probe.returncode == 0:
                log.debug("embedded postgres binaries", extra={"bindir": str(bindir)})
                return bindir
        raise EmbeddedPostgresError(
            "no usable PostgreSQL binaries (install the pgserver wheel or Debian's "
            f"postgresql package); looked in: {', '.join(tried) or 'nothing found'}"
        )

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        result: subprocess.CompletedProcess[str] = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd="/",
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            **kwargs,  # type: ignore[call-overload]
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(argv[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _open_path_for_others(self.root)
            if self.pgdata.exists():
                os.chown(self.pgdata, self._user.pw_uid, self._user.pw_gid)
            else:
                self.pgdata.mkdir(mode=0o700)
                os.chown(self.pgdata, self._user.pw_uid, self._user.pw_gid)

    def _init_cluster(self) -> None:
        self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.superuser,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "300",
            "wal_level": "logical",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "shared_buffers": "'128MB'",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self.extra_settings
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        target = self.pgdata / "bridge.conf"
        target.write_text(conf)
        main = self.pgdata / "postgresql.conf"
        text = main.read_text()
        if "include_if_exists = 'bridge.conf'" not in text:
            main.write_text(text + "\ninclude_if_exists = 'bridge.conf'\n")
        if self._user is not None:
            os.chown(target, self._user.pw_uid, self._user.pw_gid)

    def is_running(self) -> bool:
        status = self._run(
            [str(self._bin / "pg_ctl"), "-D", str(self.pgdata), "status"], check=False
        )
        return status.returncode == 0

    def start(self) -> str:
        """Creates the cluster if needed, starts it if it is not running; returns its DSN."""
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("creating embedded postgres cluster", extra={"pgdata": str(self.pgdata)})
            self._init_cluster()
        if self.is_running():  # another daemon's, or a `bridge migrate`'s: theirs to stop
            log.info("embedded postgres already running", extra={"port": self.port})
            return self.dsn
        self._write_settings()
        self._run(
            [
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.pgdata / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.started_here = True
        log.info("embedded postgres started", extra={"port": self.port})
        return self.dsn

    def release(self) -> None:
        """Stops the cluster if this object started it. One that was
        running already (a daemon on the same data directory, when a second
        `make run` or a `bridge migrate` comes along) is left running: a
        second process that fails to start, or ends, must not take the
        first one's database down with it."""
        if self.started_here:
            self.started_here = False
            self.stop()

    def stop(self) -> None:
        if (self.pgdata / "PG_VERSION").exists() and self.is_running():
            self._run(
                [str(self._bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]
            )
            log.info("embedded postgres stopped")

    @property
    def bin_dir(self) -> Path:
        return self._bin
