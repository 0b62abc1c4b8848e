"""``scripts/bench --guard``: the prompt guard's scan of 10 KB texts, in process (issue 22's budget).

No gateway and no upstream: the guard is a pure function of the text (``voidllm.guard``), so this times it
directly in this process, pinned to one core (``--gateway-cpus``, default the first usable one), on the
checkout this script belongs to. Every detector is on in ``redact`` mode
(``{"credentials": "redact", "pii": "redact"}``).

Texts: 10 KB of realistic prose (a support and engineering conversation: dates, versions, amounts, room
numbers, URLs without credentials, a little code; built from fixed sentences with a fixed seed), once with no
finding at all and once with a few findings put in (an e-mail, a phone number, a payment card, an IBAN, an
API key, a password). Phases, each ``--iterations`` times after a warm-up of a tenth of it:

- ``clean``: a fresh ``RequestGuard`` scans the clean text (what most requests cost);
- ``findings``: the same with the text holding findings (the redacted text is built too);
- ``stream``: a ``StreamRedactor`` (responses on) fed the findings text in 4-character deltas (about one
  token each, as a model streams), per 10 KB;
- ``off``: the guard with every kind off (the cost of a policy that asks for nothing).

Figures: p50, p99 and mean wall time per 10 KB, and the process CPU time per 10 KB (less sensitive to other
processes on the machine than wall time; the machine's load average is in the JSON). The target is the
issue's: at most 0.3 ms at p50 per 10 KB for ``clean`` and ``findings``. The run also checks that the clean
text has no finding and the other exactly those put in, so a faster guard that finds less cannot pass.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bench_lib import report

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]
TEXT_BYTES = 10 * 1024
DELTA = 4

TARGETS: tuple[report.Target, ...] = (
    report.Target("clean_p50_ms", "<=", 0.3, "ms"),
    report.Target("findings_p50_ms", "<=", 0.3, "ms"),
    report.Target("clean_findings", "<=", 0, ""),
    report.Target("findings_missed", "<=", 0, ""),
)

SENTENCES = (
    "Thanks for the quick reply yesterday, the staging deployment went fine after the restart.",
    "We upgraded the service from version 2.14.3 to 2.15.0 on 2024-03-18 and the latency dropped by 12.5%.",
    "Could you check why the nightly export job failed three times between 02:00 and 04:30 last week?",
    "The invoice for March came to $4,812.40, about 8% more than February because of the new region.",
    "I think the problem is the retry policy: it waits 250 ms, then 500 ms, then gives up.",
    "Our office moved to building 7, floor 3, room 314; the meeting is on Thursday at 10:15 as usual.",
    "Here is the relevant part of the config: max_connections is 64 and the pool timeout is 30 seconds.",
    "The docs at https://docs.example.com/guides/retries say the default backoff factor is 2.",
    "Can you summarise the attached incident report in five bullet points for the weekly review?",
    "Customers in the EU region saw errors for about 14 minutes; 1,204 requests failed out of 2.3 million.",
    "Please rewrite this paragraph so that it sounds friendlier but keeps every technical detail intact.",
    "The function below returns the wrong total when the list is empty, can you spot why?",
    "def total(items):\n    return sum(i.price * i.qty for i in items) / len(items)\n",
    "We need a migration that adds a nullable column and backfills it in batches of 5,000 rows.",
    "The load test reached 940 requests per second on two cores before the p99 went above 80 ms.",
    "Translate the release notes for 3.2 into German and French, keeping the headings in English.",
    "My manager asked for a table comparing the three vendors on price, support hours and data residency.",
    "The ticket number is 48213 and it was opened on 12/02/2024 by the platform team.",
    "Write a short SQL query that counts active users per day for the last 30 days, grouped by plan.",
    "After switching the queue to at-least-once delivery we saw 0.4% duplicates, now dropped.",
    "Error: connection reset by peer (code 104) while reading the response headers from the upstream.",
    "The dashboard shows CPU at 73%, memory at 4.2 GB of 8 GB, and disk usage steady at 61%.",
    "Explain the difference between optimistic and pessimistic locking with a small example in Python.",
    "We will ship the fix in the 4.1.2 patch release next Monday, after QA signs off on Friday.",
    "The customer wants the data deleted within 30 days, as described in section 4.3 of the contract.",
    "Generate three subject lines for the newsletter about the new pricing, each under 60 characters.",
)


def _findings_inserted() -> dict[str, str]:
    rnd = random.Random(22)
    key = "sk-proj-" + "".join(rnd.choice("abcdefghijkLMNOPQRSTUV0123456789") for _ in range(48))
    return {
        "email": "Please reply to jane.doe@example.com before noon.",
        "phone": "You can also call me on +44 20 7946 0958 in the afternoon.",
        "credit_card": "The charge went to the card 4111 1111 1111 1111 again.",
        "iban": "Refund it to DE89 3704 0044 0532 0130 00 instead.",
        "openai_key": f"The script still uses the key {key} from last year.",
        "generic_secret": "And the database password is Xk9pLm2qRt7v if you need it.",
    }


def texts() -> tuple[str, str, dict[str, int]]:
    """The clean text, the text with findings, and the findings put in (kind: count), each about 10 KB."""
    rnd = random.Random(2204)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < TEXT_BYTES:
        parts.append(rnd.choice(SENTENCES))
    clean = " ".join(parts)[:TEXT_BYTES]
    inserted = _findings_inserted()
    with_findings = list(parts)
    for index, sentence in enumerate(inserted.values()):
        with_findings[(index + 1) * len(parts) // (len(inserted) + 1)] = sentence
    return clean, " ".join(with_findings)[:TEXT_BYTES], dict.fromkeys(inserted, 1)


@attrs.define
class Options:
    iterations: int
    cpus: str | None
    quick: bool
    notes: list[str] = attrs.field(factory=list)


def _timed(fn: Callable[[], object], iterations: int) -> dict[str, float]:
    for _ in range(max(1, iterations // 10)):
        fn()
    walls: list[float] = []
    cpu_start = time.process_time()
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / iterations
    stats = report.latency_ms(walls)
    return {"p50": stats["p50"], "p99": stats["p99"], "mean": stats["mean"], "cpu": cpu * 1000}


async def bench(opts: Options, json_path: Path) -> int:
    sys.path.insert(0, str(REPO))  # this checkout's voidllm, whatever the venv has installed
    from voidllm.guard import OFF, RequestGuard, StreamRedactor, parse_policy

    load_before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    clean, dirty, inserted = texts()
    redact = parse_policy({"detectors": {"credentials": "redact", "pii": "redact"}})
    responses = parse_policy({"detectors": {"credentials": "redact", "pii": "redact"}, "responses": True})

    def scan(text: str, policy: Any = redact) -> Callable[[], object]:
        return lambda: RequestGuard(policy).scan(text)

    def stream() -> str:
        redactor = StreamRedactor(RequestGuard(responses))
        out = [redactor.feed(dirty[i : i + DELTA]) for i in range(0, len(dirty), DELTA)]
        return "".join(out) + redactor.finish()

    clean_guard, dirty_guard = RequestGuard(redact), RequestGuard(redact)
    clean_guard.scan(clean)
    dirty_guard.scan(dirty)
    found = dict(dirty_guard.outcome().counts)
    phases = {
        "clean": _timed(scan(clean), opts.iterations),
        "findings": _timed(scan(dirty), opts.iterations),
        "stream": _timed(stream, max(10, opts.iterations // 10)),
        "off": _timed(scan(clean, OFF), opts.iterations),
    }
    figures: dict[str, float] = {f"{name}_{k}_ms": v for name, p in phases.items() for k, v in p.items()}
    figures |= {
        "clean_findings": sum(clean_guard.outcome().counts.values()),
        "findings_found": sum(found.values()),
        "findings_missed": sum(max(0, n - found.get(kind, 0)) for kind, n in inserted.items()),
        "text_chars": len(clean),
        "stream_cpu_per_delta_us": phases["stream"]["cpu"] * 1000 / -(-len(dirty) // DELTA),
        "iterations": opts.iterations,
    }
    checks = {t.key: t.check(figures[t.key]) for t in TARGETS}
    rows = _rows(figures, checks)
    load_after = os.getloadavg()
    opts.notes.append(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} cores)"
    )
    report.print_table("Prompt guard: every detector on, redact mode, per 10 KB of text", rows, opts.notes)
    result = {
        "scenario": "guard",
        "started": started.isoformat(),
        "settings": {"iterations": opts.iterations, "cpus": opts.cpus, "delta_chars": DELTA},
        "figures": figures,
        "found": found,
        "inserted": inserted,
        "targets": report.targets_json(TARGETS, checks),
        "all_targets_met": all(checks.values()),
        "table": report.table_json(rows),
        "machine": report.machine_info(
            REPO, sys.version.split()[0], "in-process", len(os.sched_getaffinity(0))
        )
        | {"loadavg_before": list(load_before), "loadavg_after": list(load_after)},
        "notes": opts.notes,
    }
    report.write_json(json_path, result)
    return 0


def _rows(f: dict[str, float], checks: dict[str, bool]) -> list[tuple[str, str, str, str]]:
    targets = {t.key: t for t in TARGETS}

    def row(label: str, name: str, target: str | None = None) -> tuple[str, str, str, str]:
        value = (
            f"{f[f'{name}_p50_ms']:.3f} / {f[f'{name}_p99_ms']:.3f} ms (mean {f[f'{name}_mean_ms']:.3f}, "
            f"CPU {f[f'{name}_cpu_ms']:.3f})"
        )
        if target is None:
            return (label, value, "", "")
        return (label, value, targets[target].text(), "PASS" if checks[target] else "FAIL")

    return [
        row("clean prose p50 / p99", "clean", "clean_p50_ms"),
        row("prose with findings p50 / p99", "findings", "findings_p50_ms"),
        row("streamed answer (4-char deltas) p50 / p99", "stream"),
        ("streamed answer: CPU per delta", f"{f['stream_cpu_per_delta_us']:.2f} us", "", ""),
        row("every kind off p50 / p99", "off"),
        (
            "findings: clean text / put in, missed",
            f"{f['clean_findings']:.0f} / {f['findings_found']:.0f}, {f['findings_missed']:.0f}",
            "0 / all, 0",
            "PASS" if checks["clean_findings"] and checks["findings_missed"] else "FAIL",
        ),
    ]
