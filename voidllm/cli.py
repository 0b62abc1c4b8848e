"""Command line: ``voidllm serve | migrate-schema | migrate | version`` and the management commands
``orgs create``, ``users create``, ``keys create|list|revoke|rotate`` (:mod:`voidllm.manage`).

``voidllm migrate --from DSN --to DSN [--dry-run] [--replace]`` copies a whole database between SQLite and
PostgreSQL (:mod:`voidllm.store.transfer` does the work; this module only reports). It needs no
configuration file.

Exit codes: 0 success (including a clean shutdown after SIGTERM/SIGINT), 1 runtime failure, a refused
``migrate`` or a second signal during shutdown, 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

import voidllm._httpx_cli  # noqa: F401 - first, before anything imports httpx
from voidllm import __version__
from voidllm.collector import release_full_collections
from voidllm.config import Config, ConfigError, find_config_path, load_config
from voidllm.config.loader import with_listen_overrides
from voidllm.config.tls import check_admin_tls
from voidllm.errors import GatewayError
from voidllm.logs import configure_logging, report_crash
from voidllm.nursery.signals import watch_stop_signals

if TYPE_CHECKING:
    from voidllm.store.store import Store
    from voidllm.store.transfer import Endpoint, OnProgress, Survey


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voidllm", description="Privacy-first LLM gateway and MCP gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="path to voidllm.yaml (else $VOIDLLM_CONFIG, ./voidllm.yaml, /etc/voidllm)"
    )
    serve.add_argument("--host", help="listen address of the proxy port (else $VOIDLLM_HOST, else the file)")
    serve.add_argument("--port", help="proxy port, 0..65535 (else $VOIDLLM_PORT, else the file)")
    migrate = commands.add_parser("migrate-schema", help="apply database schema migrations and exit")
    migrate.add_argument("--config", help="path to voidllm.yaml")
    _add_migrate(commands)
    commands.add_parser("version", help="print the version")
    from voidllm.manage import add_commands

    add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voidllm`` console script."""
    args = _parser().parse_args(argv)
    if args.command != "serve":
        release_full_collections()  # held while the modules loaded (voidllm.entry); serve releases it later
    if args.command == "version":
        print(f"voidllm {__version__}")
        return 0
    if args.command == "migrate":
        return _migrate(args)
    try:
        config = load_config(args.config)
        if args.command == "serve":
            config = with_listen_overrides(config, host=args.host, port=args.port)
            check_admin_tls(config)
    except ConfigError as exc:
        print(f"voidllm: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(config.logging.level, config.logging.format)
    # The admin key only triggers bootstrap; keep it out of the environment of anything we start later.
    os.environ.pop("VOIDLLM_ADMIN_KEY", None)
    if args.command == "migrate-schema":
        return trio.run(_migrate_schema, config)
    if args.command in ("orgs", "users", "keys"):
        from voidllm.manage import run_command

        problem = _announce_store(config, find_config_path(args.config, os.environ))
        if problem:
            print(f"voidllm: {problem}", file=sys.stderr)
            return 2
        return trio.run(run_command, config, args)
    from voidllm.server import ListenError, open_listeners

    try:
        if config.server.workers > 1:
            from voidllm.workers import run_workers

            release_full_collections()  # the supervisor: its workers set their own after their start

            return run_workers(config)
        listeners = open_listeners(config)
    except ListenError as exc:
        print(f"voidllm: {exc}", file=sys.stderr)
        return 1
    try:
        return trio.run(_serve, config, listeners)
    finally:
        listeners.close()


def _announce_store(config: Config, path: Path | None) -> str | None:
    """Say on stderr which configuration and database a management command uses; the reason to refuse when
    that database does not exist yet (a typo in a path must not create an empty store that then looks
    like the real one: ``voidllm migrate-schema`` or the gateway's first start creates it)."""
    db = config.database
    source = str(path) if path is not None else "no file (defaults and the environment)"
    sqlite = db.driver in ("sqlite", "sqlite3")
    where = str(Path(db.dsn).expanduser().absolute()) if sqlite else _safe_dsn(db.dsn)
    print(f"voidllm: config {source}; database {db.driver} {where}", file=sys.stderr)
    if sqlite and db.dsn not in ("", ":memory:") and not Path(db.dsn).expanduser().is_file():
        return (
            f"no database at {Path(db.dsn).expanduser().absolute()}: start the gateway once or run "
            "`voidllm migrate-schema` with this configuration, or pass --config for the right one"
        )
    return None


def _safe_dsn(dsn: str) -> str:
    """A DSN without its password, for messages."""
    scheme, sep, rest = dsn.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at:
        return dsn
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"


async def _migrate_schema(config: Config) -> int:
    from voidllm.store.migrate import migrate
    from voidllm.store.store import open_store

    db = config.database
    async with open_store(db.driver, db.dsn) as store:
        revision = await migrate(store)
    print(f"schema at revision {revision}")
    return 0


# -- voidllm migrate ------------------------------------------------------------------------------------


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dsn_help = "postgres://…, postgresql://…, sqlite:///PATH or an SQLite file path"
    parser = commands.add_parser(
        "migrate",
        help="copy every row between two databases (SQLite and/or PostgreSQL)",
        description="Migrate the target's schema, copy every table in dependency order and verify the "
        "row counts. The source must be at this version's schema; stop the gateways writing to it first.",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="DSN", help=f"source: {dsn_help}")
    parser.add_argument("--to", dest="target", required=True, metavar="DSN", help=f"target: {dsn_help}")
    parser.add_argument("--dry-run", action="store_true", help="show the row counts to copy; change nothing")
    parser.add_argument("--replace", action="store_true", help="delete a non-empty target's rows first")
    # No default here: it is the transfer module's, and importing that (psycopg, Alembic) for the parser would
    # load them into every command, `voidllm serve` too.
    parser.add_argument("--batch-size", type=_positive_int, help=argparse.SUPPRESS)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _migrate(args: argparse.Namespace) -> int:
    from voidllm.store.transfer import Endpoint

    try:
        source, target = Endpoint.parse(args.source), Endpoint.parse(args.target)
    except ValueError as exc:
        print(f"voidllm migrate: {exc}", file=sys.stderr)
        return 2
    if source.same_as(target):
        print("voidllm migrate: --from and --to name the same database", file=sys.stderr)
        return 2
    if source.missing:
        print(f"voidllm migrate: source database file not found: {source.display}", file=sys.stderr)
        return 1
    try:
        return trio.run(_migrate_data, source, target, args)
    except KeyboardInterrupt:
        print("voidllm migrate: interrupted; the target may hold part of the data", file=sys.stderr)
        return 1


async def _migrate_data(source: Endpoint, target: Endpoint, args: argparse.Namespace) -> int:
    from voidllm.store.store import open_store
    from voidllm.store.transfer import BATCH_SIZE, survey, transfer

    print(f"migrate {source.display} -> {target.display}{' (dry run)' if args.dry_run else ''}", flush=True)
    try:
        async with open_store(source.driver, source.dsn) as src, _open_target(target, args.dry_run) as dst:
            if dst is None or args.dry_run:
                _print_survey(await survey(src, dst))
                return 0
            with _progress_reporter() as on_progress:
                counts = await transfer(
                    src,
                    dst,
                    replace=args.replace,
                    batch_size=args.batch_size or BATCH_SIZE,
                    on_progress=on_progress,
                )
    except GatewayError as exc:
        print(f"voidllm migrate: {exc}", file=sys.stderr)
        return 1
    print(f"copied {sum(counts.values())} rows in {len(counts)} tables; row counts verified")
    return 0


@asynccontextmanager
async def _open_target(target: Endpoint, dry_run: bool) -> AsyncIterator[Store | None]:
    """The target store, or ``None`` in a dry run whose SQLite file does not exist (opening creates it)."""
    from voidllm.store.store import open_store

    if dry_run and target.missing:
        yield None
        return
    async with open_store(target.driver, target.dsn) as store:
        yield store


def _print_survey(found: Survey) -> None:
    print(f"{'table':<24}{'source rows':>12}{'target rows':>12}")
    for name, rows in found.source_rows.items():
        print(f"{name:<24}{rows:>12}{found.target_rows.get(name, '-'):>12}")
    source_total, target_total = sum(found.source_rows.values()), sum(found.target_rows.values())
    print(f"{'total':<24}{source_total:>12}{target_total:>12}")
    if found.target_revision is None:
        print(f"target schema: none yet; it would be created (revision {found.head})")
    elif found.target_revision != found.head:
        print(f"target schema: revision {found.target_revision}; it would be upgraded to {found.head}")
    if found.target_empty:
        print(f"the target is empty: {source_total} rows would be copied")
    else:
        print(
            f"the target is not empty: without --replace the migration is refused; with it, "
            f"its {target_total} rows are deleted first"
        )
    print("dry run: nothing was changed")


@contextmanager
def _progress_reporter() -> Iterator[OnProgress]:
    """A progress bar per table on a terminal (on stderr), else one plain line per finished table."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield _print_finished_tables()
        return
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:

        def update(table: str, copied: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=copied)

        yield update


def _print_finished_tables() -> OnProgress:
    printed: set[str] = set()

    def update(table: str, copied: int, total: int) -> None:
        if copied >= total and table not in printed:
            printed.add(table)
            print(f"{table}: {copied} rows", flush=True)

    return update


async def _serve(config: Config, listeners: Any) -> int:
    from voidllm.server import serve

    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_stop_signals, stop)
            await serve(config, stop, listeners=listeners, tune_gc=True)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        report_crash(group)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
