"""The `bridge` command: `bridge run` (the default), `bridge token USER_ID`,
`bridge migrate`, `bridge check`, `bridge health`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from bridge import logs
from bridge.auth import mint_token
from bridge.config import ConfigError, Settings, load_settings
from bridge.tasks import where


def _run(settings: Settings) -> int:
    from bridge.app import serve

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stopper(task))
        with contextlib.suppress(asyncio.CancelledError):
            await serve(settings)

    from bridge.migrate import MigrationError
    from bridge.preflight import PreflightError

    # The runner also cancels and awaits whatever the libraries left running.
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    except (MigrationError, PreflightError) as exc:
        print(f"bridge: {exc}", file=sys.stderr)
        return 1
    return 0


def _stopper(task: asyncio.Task[None]) -> Callable[[], None]:
    """The signal handler: the first signal stops the daemon in order; if
    that has not ended within STOP_DEADLINE (a hung connection, a library
    that ate the cancel), or a second signal comes, the process exits at
    once, so an orchestrator's stop never waits for its own kill timeout."""
    from bridge.app import STOP_DEADLINE

    timer: threading.Timer | None = None

    loop = task.get_loop()

    def give_up() -> None:
        print(f"bridge: did not stop within {STOP_DEADLINE:g} s; exiting", file=sys.stderr)
        with contextlib.suppress(Exception):  # read from another thread: best effort
            for stuck in list(asyncio.all_tasks(loop)):
                print(
                    f"bridge: still waiting: {stuck.get_name()} at {where(stuck)}", file=sys.stderr
                )
        sys.stderr.flush()
        os._exit(1)

    def on_signal() -> None:
        nonlocal timer
        if timer is not None:
            give_up()
        timer = threading.Timer(STOP_DEADLINE, give_up)
        timer.daemon = True
        timer.start()
        task.cancel()

    return on_signal


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed: the socket path costs less CPU on it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _check(settings: Settings) -> int:
    """The start-up verdict without starting (the embedded database is not
    started for it: only the settings are checked then)."""
    from bridge.preflight import check

    verdict = asyncio.run(check(settings, None if settings.embedded else settings.database.url))
    print(f"bridge: {verdict.render()}", file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def _token(settings: Settings, user_id: str, ttl: int) -> int:
    secret = settings.jwt_secret
    if not secret:
        print("no JWT secret configured (SUPABASE_JWT_SECRET)", file=sys.stderr)
        return 2
    print(mint_token(secret, user_id, ttl))
    return 0


def _migrate(settings: Settings) -> int:
    from bridge.embedded import EmbeddedPostgres
    from bridge.migrate import MigrationError, prepare_database

    supabase_dir = Path(settings.database.supabase_dir)
    try:
        if settings.embedded:
            pg = EmbeddedPostgres(settings.database.data_dir, settings.database.embedded_port)
            dsn = pg.start()
            try:
                applied = asyncio.run(
                    prepare_database(dsn, supabase_dir, bootstrap=True, seed=True)
                )
            finally:
                pg.release()
        else:
            applied = asyncio.run(
                prepare_database(settings.database.url, supabase_dir, bootstrap=False, seed=False)
            )
    except MigrationError as exc:
        print(f"bridge migrate: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


HEALTH_TIMEOUT = 4.0


def _health(settings: Settings) -> int:
    """The container's health check: /healthz on the configured port, exit 0
    when it answers 200 (ok or degraded), 1 otherwise."""
    import urllib.error
    import urllib.request

    host = settings.server.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{settings.server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as resp:
            print(resp.read().decode(errors="replace"))
            return 0 if resp.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"bridge health: {url} answered {exc.code}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"bridge health: {url} unreachable: {reason}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    parser.add_argument("--config", help="config file (default: $BRIDGE_CONFIG or config.toml)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the daemon (default)")
    token = sub.add_parser("token", help="print a signed access token for a user")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    sub.add_parser("migrate", help="apply the migrations (and the seed, embedded)")
    sub.add_parser("check", help="print whether the configuration can work, without starting")
    sub.add_parser("health", help="ask the running daemon's /healthz (the container health check)")
    sub.add_parser("settings", help="print every setting with its default (the README's table)")
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    if args.command == "settings":
        from bridge.settings_table import render

        print(render())
        return 0
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"bridge: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        return _token(settings, args.user_id, args.ttl)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "check":
        return _check(settings)
    if args.command == "health":
        return _health(settings)
    return _run(settings)


if __name__ == "__main__":
    sys.exit(main())
