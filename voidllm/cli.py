"""Command line: ``voidllm serve | migrate-schema | version`` and the management commands
``orgs create``, ``users create``, ``keys create|list|revoke|rotate`` (:mod:`voidllm.manage`).

Exit codes: 0 success (including a clean shutdown after SIGTERM/SIGINT), 1 runtime failure or a second
signal during shutdown, 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import trio

from voidllm import __version__
from voidllm.availability import check_available
from voidllm.config import Config, ConfigError, load_config
from voidllm.logs import configure_logging
from voidllm.nursery.signals import watch_stop_signals

log = logging.getLogger("voidllm")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voidllm", description="Privacy-first LLM gateway and MCP gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="path to voidllm.yaml (else $VOIDLLM_CONFIG, ./voidllm.yaml, /etc/voidllm)")
    migrate = commands.add_parser("migrate-schema", help="apply database schema migrations and exit")
    migrate.add_argument("--config", help="path to voidllm.yaml")
    commands.add_parser("version", help="print the version")
    from voidllm.manage import add_commands

    add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voidllm`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"voidllm {__version__}")
        return 0
    try:
        config = load_config(args.config)
        if args.command == "serve":
            check_available(config)
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

        return trio.run(run_command, config, args)
    if config.server.workers > 1:
        from voidllm.workers import run_workers

        return run_workers(config)
    return trio.run(_serve, config)


async def _migrate_schema(config: Config) -> int:
    from voidllm.store.migrate import migrate
    from voidllm.store.store import open_store

    db = config.database
    async with open_store(db.driver, db.dsn) as store:
        revision = await migrate(store)
    print(f"schema at revision {revision}")
    return 0


async def _serve(config: Config) -> int:
    from voidllm.server import serve

    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_stop_signals, stop)
            await serve(config, stop)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        report_crash(group)
        return 1
    return 0


def report_crash(group: BaseExceptionGroup[BaseException]) -> None:
    """Log and print the errors that stopped the gateway (startup failures mostly: our own messages)."""
    for exc in _leaves(group):
        log.critical("gateway stopped by an error", extra={"error_type": type(exc).__name__})
        print(f"voidllm: {type(exc).__name__}: {exc}", file=sys.stderr)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


if __name__ == "__main__":
    sys.exit(main())
