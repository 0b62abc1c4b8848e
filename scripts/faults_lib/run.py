"""``scripts/faults``: fault scenarios against a real ``voidllm serve`` (issue 14 point 5).

Each scenario starts its own processes (mock upstreams, the gateway, a private Redis where needed) and its
own PostgreSQL database, injects one fault under load, measures one figure against its goal, and always
cleans up (``finally``: every process group it started is killed, its database dropped). Each runs under a
hard timeout; a scenario that overruns it, or cannot reach its measurement, is a FAIL with the reason.

The run ends with a markdown table (printed, and with ``--table PATH`` written into that file between the
``<!-- faults:table -->`` markers, with the machine and the date). The exit code is 0 when every scenario
passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

from faults_lib import clients, limits, soak, upstream, usage
from faults_lib.harness import Result, Scenario, ScenarioError, log, machine

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

START, END = "<!-- faults:table -->", "<!-- /faults:table -->"


@attrs.frozen
class Spec:
    name: str
    run: Callable[[Scenario], Awaitable[Result]]
    timeout: float  # hard limit of the whole scenario, seconds (full run)
    quick_timeout: float
    what: str


SCENARIOS = [
    Spec("saturation", usage.saturation, 240, 90, "top rate; usage rows written == requests answered 200"),
    Spec("store_cut", usage.store_cut, 420, 150, "PostgreSQL cut 60 s at top rate; 0 usage events lost"),
    Spec(
        "sigkill_spill", usage.sigkill_spill, 240, 150, "SIGKILL with spilled events; replayed exactly once"
    ),
    Spec(
        "deployment_killed", upstream.deployment_killed, 180, 120, "upstream killed and restarted under load"
    ),
    Spec("hung_upstream", upstream.hung_upstream, 120, 90, "hung upstream ends at the model's timeout"),
    Spec("redis_faults", limits.redis_faults, 240, 180, "Redis stopped, then frozen (SIGSTOP)"),
    Spec("sigterm_drain", usage.sigterm_drain, 150, 120, "SIGTERM with ~100 requests in flight"),
    Spec("slowloris", clients.slowloris, 150, 120, "300 connections trickling headers"),
    Spec("slow_readers", clients.slow_readers, 240, 180, "clients that read nothing; cut, breaker closed"),
    Spec("soak", soak.soak, 2400, 300, "mixed soak; RSS and descriptors sampled"),
]
BY_NAME = {spec.name: spec for spec in SCENARIOS}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="scenarios to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--all", action="store_true", help="run every scenario")
    parser.add_argument("--quick", action="store_true", help="shorter durations (soak 60 s unless --soak)")
    parser.add_argument("--soak", type=_seconds, help="soak duration, e.g. 60s, 30m (default 30m; 60s quick)")
    parser.add_argument("--table", type=Path, help="write the result table into this markdown file")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's work directory (logs)")
    return parser.parse_args(argv)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


async def run_one(spec: Spec, *, quick: bool, keep: bool) -> Result:
    scenario = Scenario.open(spec.name, quick=quick, keep=keep)
    limit = spec.quick_timeout if quick else spec.timeout
    if spec.name == "soak":
        limit = soak.duration(scenario) + 240
    started = time.monotonic()
    log(f"{spec.name}: start (hard limit {limit:.0f} s, work directory {scenario.workdir})")
    try:
        with trio.fail_after(limit):
            result = await spec.run(scenario)
    except trio.TooSlowError:
        result = Result(spec.name, f"did not finish within its hard limit of {limit:.0f} s", spec.what, False)
    except ScenarioError as exc:
        result = Result(spec.name, f"could not run: {exc}".splitlines()[0], spec.what, False)
        log(f"{spec.name}: {exc}")
    except Exception as exc:  # one scenario's crash must not stop the run
        traceback.print_exc()
        result = Result(spec.name, f"runner error: {type(exc).__name__}: {exc}"[:200], spec.what, False)
    finally:
        with trio.CancelScope(shield=True):
            await scenario.close()
    result.seconds = time.monotonic() - started
    log(f"{spec.name}: {result.verdict}  {result.figure}  (goal: {result.goal})")
    for note in result.notes:
        log(f"{spec.name}:   note: {note}")
    return result


def table(results: list[Result], *, quick: bool, soak_seconds: float, load_before: str) -> str:
    box = machine()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run ending {when}: {box['cores']} cores, {box['ram_gb']} GB RAM; load average (1, 5, 15 min) "
        f"{load_before} before the run, {box['load']} at its end (a shared machine: other engineers' tests "
        f"and builds, and the runner's own load generator); mode {'quick' if quick else 'full'}, soak "
        f"{soak_seconds:.0f} s.",
        "",
        "| scenario | result | figure | goal | s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | **{r.verdict}** | {_cell(r.figure)} | {_cell(r.goal)} | {r.seconds:.0f} |"
        )
    notes = [(r.name, note) for r in results for note in r.notes]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {name}: {note}" for name, note in notes]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_table(path: Path, text: str) -> None:
    """Replace what is between the markers in ``path`` (append the markers when missing)."""
    doc = path.read_text() if path.exists() else ""
    block = f"{START}\n{text}{END}"
    if START in doc and END in doc:
        doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip("\n") + ("\n\n" if doc else "") + block + "\n"
    path.write_text(doc)


async def _main(args: argparse.Namespace) -> int:
    specs = SCENARIOS if args.all else [BY_NAME[name] for name in args.names]
    load_before = machine()["load"]
    results = [await run_one(spec, quick=args.quick, keep=args.keep) for spec in specs]
    soak_seconds = soak.duration(Scenario("soak", args.quick, Path()))
    text = table(results, quick=args.quick, soak_seconds=soak_seconds, load_before=load_before)
    print()
    print(text)
    if args.table:
        write_table(args.table, text)
        log(f"table written into {args.table}")
    return 0 if all(r.passed for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if args.list:
        for spec in SCENARIOS:
            print(f"{spec.name:<18} {spec.what}")
        return 0
    unknown = [name for name in args.names if name not in BY_NAME]
    if unknown or not (args.all or args.names):
        print(
            f"unknown scenario: {', '.join(unknown)}" if unknown else "name scenarios, or --all",
            file=sys.stderr,
        )
        print("scenarios: " + ", ".join(BY_NAME), file=sys.stderr)
        return 2
    if args.soak is not None:
        soak.OVERRIDE[0] = args.soak
    signal.signal(signal.SIGTERM, _interrupted)  # the atexit hook of bench_lib.procs kills every child
    signal.signal(signal.SIGHUP, _interrupted)
    try:
        return trio.run(_main, args)
    except KeyboardInterrupt:
        print("interrupted: every process started was killed", file=sys.stderr)
        return 130


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
