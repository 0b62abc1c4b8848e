"""The mock upstream for the fault runner: ``voidllm.testing.mock_openai``'s CLI plus ``--completion-bytes``.

An answer of several megabytes cannot go through ``--completion-text`` (one argument is at most 128 KiB on
Linux), and the slow-reader scenario needs answers larger than every socket buffer between the gateway and
its client. Everything else is the mock's own behaviour; this file only builds its :class:`Behaviour`.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys

import trio

from voidllm.testing.mock_openai import FAIL_MODES, Behaviour, MockUpstream


def _duration(text: str) -> float:
    text = text.strip().lower()
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text.removesuffix("s"))


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mockserve", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=_duration, default=0.0)
    parser.add_argument("--stream-chunks", type=int, default=5)
    parser.add_argument("--chunk-interval", type=_duration, default=0.0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--fail", choices=sorted(FAIL_MODES))
    parser.add_argument("--completion-bytes", type=int, default=0, help="answer with this many bytes of text")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    behaviour = Behaviour(
        latency=args.latency,
        status=args.status,
        stream_chunks=args.stream_chunks,
        chunk_interval=args.chunk_interval,
        fail=args.fail,
    )
    if args.completion_bytes:
        behaviour.completion_text = "x" * args.completion_bytes
    upstream = MockUpstream(behaviour, record=False)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(upstream.serve, host="127.0.0.1", port=args.port))
            print(f"listening http://127.0.0.1:{port}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(_serve, _arguments(sys.argv[1:]))
