"""Benchmark: `ledger ui` on a 100,000-event ledger, measured in a real browser.

One command::

    python benchmarks/bench_ui.py                 # ~100,000 events (about 2 minutes to build)
    python benchmarks/bench_ui.py --quick         # ~10,000 events
    python benchmarks/bench_ui.py --keep /tmp/ui-bench   # keep (and reuse) the ledger

It builds a ledger of a long imported git history (``build_history`` of
``bench_import_replay.py``, imported with ``import_git``) plus agent sessions recorded
through the SDK (decisions, file changes, messages, signals, LLM and tool spans with
``gen_ai.*`` attributes), starts the UI server, drives Debian's Chromium with Playwright
and prints medians of:

* **first paint**: the ``first-contentful-paint`` entry and the app's own
  ``app-ready`` mark (header, timeline and event list drawn), from navigation start;
* **each interaction**, as wall time from the input to the end of the render it
  causes, measured in the page (``performance.now()`` taken in the input handler,
  again after the DOM is updated; see ``rendered`` in ``ui/static/js/lib.js``):
  timeline zoom (wheel), pan (drag), filter by kind, filter by text (after its 250 ms
  typing debounce), scrubber drag, open a decision, open a file's history and blame.

Not a test: nothing is asserted; numbers go to the closing note and docs/ui.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import_replay import build_history  # noqa: E402
from ledger import Ledger  # noqa: E402
from replay import LocalHistory  # noqa: E402

PROJECT = "bench"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def build_ledger(dest: Path, commits: int, sessions: int) -> Path:
    """The imported history plus ``sessions`` agent sessions; reused when present."""
    db = dest / "ledger.db"
    if db.exists():
        return db
    from nervous_system.gitimport import import_git

    repo = dest / "repo"
    t = time.perf_counter()
    build_history(repo, commits, max(300, commits // 10))
    print(f"history: {commits:,} commits built in {time.perf_counter() - t:.1f} s", flush=True)
    with Ledger(db) as lg:
        t = time.perf_counter()
        summary = import_git(lg, repo, tenant_id="default", project_id=PROJECT)
        print(f"import: {getattr(summary, 'events', '?')} events in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    with Ledger(db, durability="group") as lg:
        record_sessions(lg, sessions)
        lg.flush()
    print(f"agent sessions: {sessions} recorded in {time.perf_counter() - t:.1f} s", flush=True)
    return db


def record_sessions(lg: Ledger, sessions: int) -> None:
    """Agent sessions after the imported history: each a few LLM/tool spans, decisions,
    file changes, messages and signals."""
    import nervous_system

    rng = random.Random(3)
    files = [f"agents/mod_{i}.py" for i in range(60)]
    content: dict[str, bytes] = {}
    for n in range(sessions):
        agent = f"agent-{n % 12}"
        inst = nervous_system.configure(lg, project_id=PROJECT, agent_id=agent, agent_role="coder",
                                        otlp=False, set_global=False)
        tracer = inst.tracer("bench")
        for step in range(6):
            with tracer.start_as_current_span(f"chat step {step}", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "bench-model",
                    "gen_ai.usage.input_tokens": rng.randint(200, 4000),
                    "gen_ai.usage.output_tokens": rng.randint(20, 800)}):
                inst.recorder.decision(f"step {step} of session {n}: refactor", confidence=rng.random())
                with tracer.start_as_current_span("execute_tool edit_file", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "edit_file"}):
                    path = rng.choice(files)
                    content[path] = content.get(path, b"") + f"line {n}.{step}\n".encode()
                    inst.recorder.file_change(path, content[path])
                inst.recorder.message(f"done with step {step}", recipients=[f"agent-{(n + 1) % 12}"])
            inst.recorder.signal("ok", cpu_load_percent=rng.random() * 100, memory_usage_mb=500)
        inst.shutdown()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(db: Path, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    from ui.server import UIServer

    lg = Ledger(db)
    t = time.perf_counter()
    server = UIServer(LocalHistory(lg, "default", PROJECT)).start()
    events = server.state.index.summary()["events"]
    print(f"server: {events:,} events indexed, listening in {time.perf_counter() - t:.2f} s")
    decisions = [r for r in server.state.index.rows if r[3] == "decision"]
    paths = sorted({r[6] for r in server.state.index.rows if r[3] == "state_change" and r[6].startswith("agents/")})
    results: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(server.url)  # sets the cookie
        page.wait_for_selector("body[data-last-render='app-ready']", state="attached", timeout=60_000)
        for _ in range(rounds):
            page.goto(server.base + "/#/timeline")
            page.reload()
            page.wait_for_selector("body[data-last-render='app-ready']", state="attached", timeout=60_000)
            paint = page.evaluate("""() => ({
                fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
                ready: performance.getEntriesByName('app-ready')[0].startTime })""")
            results.setdefault("first contentful paint", []).append(paint["fcp"])
            results.setdefault("first paint, app ready (timeline drawn)", []).append(paint["ready"])

        def timed(label: str, what: str, action) -> None:
            before = int(page.get_attribute("body", "data-render") or 0)
            count = page.evaluate("() => (window.__uiTimings || []).length")
            action()
            for _ in range(600):
                if int(page.get_attribute("body", "data-render") or 0) > before \
                        and page.get_attribute("body", "data-last-render") == what:
                    break
                page.wait_for_timeout(10)
            ms = page.evaluate(f"() => (window.__uiTimings || []).slice({count}).filter(t => t.what === '{what}').map(t => t.ms)")
            results.setdefault(label, []).extend(ms[-1:])

        plot = page.locator("[data-testid=timeline]")
        box = plot.bounding_box()
        cx, cy = box["x"] + box["width"] * 0.6, box["y"] + 40
        for i in range(rounds):
            page.mouse.move(cx, cy)
            timed("timeline zoom (wheel)", "zoom", lambda: page.mouse.wheel(0, -300 if i % 2 == 0 else 300))
            timed("timeline pan (drag)", "pan", lambda: (page.mouse.move(cx, cy), page.mouse.down(),
                                                         page.mouse.move(cx - 200, cy, steps=4), page.mouse.up()))
            timed("filter by kind", "timeline", lambda: page.select_option("[data-testid=filter-kind]",
                                                                           "decision" if i % 2 == 0 else ""))
        for i in range(rounds):
            timed("filter by text", "timeline", lambda: page.fill("[data-testid=filter-q]", "refactor" if i % 2 == 0 else ""))
        page.fill("[data-testid=filter-q]", "")
        page.goto(server.base + "/#/scrubber")
        page.wait_for_selector("body[data-last-render='scrub']", state="attached", timeout=60_000)
        for i in range(rounds):
            timed("scrubber drag", "scrub", lambda: page.locator("[data-testid=scrubber]").fill(str(1000 + i * 800)))
        rng = random.Random(1)
        for i in range(rounds):
            event_id = rng.choice(decisions)[2]
            timed("open a decision", "decision", lambda: page.goto(server.base + f"/#/decision/{event_id}"))
        for i in range(rounds):
            path = paths[i % len(paths)]
            timed("open a file (history + blame)", "file", lambda: page.goto(server.base + f"/#/file?path={path}"))
        browser.close()
    server.stop()
    lg.close()
    print(f"\n{events:,} events; medians of {rounds} runs (ms):")
    for label, values in results.items():
        print(f"  {label:<42} {median(values):8.1f}   (min {min(values):.1f}, max {max(values):.1f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 10,000 events instead of 100,000")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the ledger in this directory")
    parser.add_argument("--rounds", type=int, default=9, help="runs of each measurement")
    args = parser.parse_args()
    commits, sessions = (2_000, 40) if args.quick else (22_000, 800)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        db = build_ledger(args.keep, commits, sessions)
        run(db, args.rounds)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
            db = build_ledger(Path(tmp), commits, sessions)
            run(db, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
