"""``voidllm serve`` freezes its start-up heap for the garbage collector and collects the young generation
less often (:func:`voidllm.server.tune_gc_after_start`); a gateway run inside another program does not."""

from __future__ import annotations

import gc
import json
import linecache
import subprocess
import sys
import textwrap
import traceback
from functools import partial
from pathlib import Path

import attrs
import httpx
import trio

from tests.gateway import make_config, run_gateway
from tests.process import spawn_gateway, write_config
from voidllm import collector, server
from voidllm.server import GC_YOUNG_THRESHOLD, MALLOC_ARENAS, forget_generated_sources


async def test_the_gateway_process_freezes_its_heap_before_it_listens(tmp_path: Path) -> None:
    async with spawn_gateway(write_config(tmp_path)) as gw:
        with trio.fail_after(10):
            await gw.wait_for_line(lambda: bool(gw.log("heap frozen")))
        (record,) = gw.log("heap frozen")
        assert record["young_threshold"] == GC_YOUNG_THRESHOLD == 5000
        assert record["thresholds"] == [5000, 10, 10]  # the hold on full collections (voidllm.entry) is over
        assert record["malloc_arenas"] == MALLOC_ARENAS == 2  # this machine's Python runs on glibc
        assert isinstance(record["objects"], int)
        assert record["objects"] > 50_000  # the modules, the app and its caches
        messages = [line for line in gw.lines if '"msg":"heap frozen"' in line or '"msg":"listening"' in line]
        assert ['"msg":"heap frozen"' in line for line in messages] == [True, False]  # before it listens


def _collections_of(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter that records the generation of every collection in ``collected``;
    the code's last line prints a JSON object, returned here."""
    recorder = (
        "import gc, json, sys\n"
        "collected = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and collected.append(info['generation']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", recorder + textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_command_line_loads_without_full_collections_and_then_gets_pythons_thresholds() -> None:
    held = _collections_of(
        """
        from voidllm import entry
        sys.argv = ["voidllm", "version"]
        entry.main()
        counts = {"full": collected.count(2), "young": collected.count(0)}
        print(json.dumps({**counts, "after": gc.get_threshold()}))
        """
    )
    assert held["full"] == 0
    assert held["young"] > 50  # young collections still run while the modules load
    assert held["after"] == [700, 10, 10]  # Python's own, for every command but serve
    # The same imports without the hold: the collector walks start-up's objects in full, which is what the
    # hold saves (if this no longer happens, the hold has stopped mattering).
    plain = _collections_of(
        """
        import voidllm.cli, voidllm.manage
        print(json.dumps({"full": collected.count(2)}))
        """
    )
    assert plain["full"] >= 1


def test_the_hold_on_full_collections_is_released_once() -> None:
    before = gc.get_threshold()
    try:
        collector.hold_full_collections()
        held = gc.get_threshold()
        collector.hold_full_collections()  # a second hold changes nothing
        assert gc.get_threshold() == held
        assert held[:2] == before[:2]
        assert held[2] > 1_000_000
        collector.release_full_collections(GC_YOUNG_THRESHOLD)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        collector.release_full_collections()  # nothing held: the current thresholds stay
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)


async def test_an_operators_malloc_arena_max_is_left_to_rule(tmp_path: Path) -> None:
    async with spawn_gateway(write_config(tmp_path), env={"MALLOC_ARENA_MAX": "4"}) as gw:
        with trio.fail_after(10):
            await gw.wait_for_line(lambda: bool(gw.log("heap frozen")))
        (record,) = gw.log("heap frozen")
        assert record["malloc_arenas"] is None


async def test_a_gateway_inside_another_program_leaves_its_collector_alone(sqlite_dsn: str) -> None:
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    async with run_gateway(make_config(sqlite_dsn)):
        pass
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)


def test_attrs_generated_sources_are_forgotten_and_tracebacks_still_name_the_method() -> None:
    @attrs.define
    class Probe:
        value: int = attrs.field(validator=attrs.validators.instance_of(int))

    assert any(name.startswith("<attrs generated") for name in linecache.cache)
    assert forget_generated_sources() > 0
    assert not any(name.startswith("<attrs generated") for name in linecache.cache)
    assert forget_generated_sources() == 0

    try:
        Probe("not an int")  # type: ignore[arg-type]
    except TypeError as exc:
        names = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    assert "__init__" in names  # the generated method is still in the traceback, without its source line
    Probe(1)


async def test_the_memory_trim_service_trims_every_interval(autojump_clock: trio.abc.Clock) -> None:
    calls: list[tuple[float, int]] = []

    def trim(pad: int) -> int:
        calls.append((trio.current_time(), pad))
        return 1

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(server.serve_memory_trim, trim=trim))
        await trio.sleep(35)
        nursery.cancel_scope.cancel()
    assert calls == [(10.0, 0), (20.0, 0), (30.0, 0)]


async def test_the_gateway_process_runs_the_memory_trim_service(tmp_path: Path) -> None:
    async with spawn_gateway(write_config(tmp_path)) as gw, httpx.AsyncClient() as client:
        text = (await client.get(gw.url + "/metrics")).text
    assert 'voidllm_service_up{service="memory-trim"} 1.0' in text
