"""``ledger ui`` in a real browser: Playwright for Python driving Debian's Chromium
(never a downloaded browser), against a real server (uvicorn in a thread) over a ledger
made by a scripted multi-agent session (``tests/ui_session.py``).

Each view renders the right data; the scrubber's tree equals ``ledger replay`` at that
moment; an event recorded while the page is open appears without a reload; requests
without the token (or with a foreign Host header) are refused. The test also takes
the screenshots of docs/ui.md: into a temporary directory, or into ``docs/ui/`` when
``LEDGER_UPDATE_SCREENSHOTS=1`` is set (so a test run leaves the checkout untouched).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ledger import Ledger
from replay import LocalHistory, replay_local
from replay.blame import blame
from tests.ui_session import PARSER_2, PROJECT, record_session

REPO_ROOT = Path(__file__).resolve().parent.parent
SHOTS = REPO_ROOT / "docs" / "ui"
CHROMIUM = "/usr/bin/chromium"
#: Launch arguments that work as root on a build machine, with no network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
INSTALL_HINT = ("the UI tests drive Debian's Chromium: install it with `apt-get install -y chromium` "
                "(as root) so that /usr/bin/chromium exists, and `pip install -e '.[dev]'` for Playwright")


def ensure_chromium() -> str:
    """/usr/bin/chromium, installed with apt when missing and possible; else fail saying what to install."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env, check=False, capture_output=True)
    if not os.path.exists(CHROMIUM):
        pytest.fail(INSTALL_HINT)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(INSTALL_HINT)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The scripted session's ledger and a running UI server on it."""
    from ui.server import UIServer

    base = tmp_path_factory.mktemp("ui")
    lg = Ledger(base / "ledger.db")
    session = record_session(lg, base / "work")
    history = LocalHistory(lg, "default", PROJECT)
    server = UIServer(history, analytics_url=f"chdb:///{base / 'analytics'}").start()
    yield {"ledger": lg, "session": session, "history": history, "server": server, "base": base}
    server.stop()
    lg.close()


@pytest.fixture
def page(browser, world):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(world["server"].url)
    wait_render(pg, "app-ready")
    yield pg
    context.close()
    assert not errors, errors


def wait_render(pg, what: str, after: int | None = None, timeout: float = 20_000) -> int:
    """Wait until the app finished rendering ``what`` (``<body data-last-render>``), after
    render number ``after`` when given; returns the render counter. (Attribute selectors,
    not script: the page's Content-Security-Policy forbids eval.)"""
    if after is None:
        pg.wait_for_selector(f"body[data-last-render='{what}']", state="attached", timeout=timeout)
    else:
        for _ in range(int(timeout / 50)):
            if renders(pg) > after and pg.get_attribute("body", "data-last-render") == what:
                break
            pg.wait_for_timeout(50)
        else:
            raise AssertionError(f"no {what!r} render after render #{after}")
    return int(pg.get_attribute("body", "data-render") or 0)


def shot(pg, name: str) -> None:
    """Screenshot the page (docs/ui/NAME.png with LEDGER_UPDATE_SCREENSHOTS=1, else a
    temporary directory) and check the picture was taken."""
    target = SHOTS if os.environ.get("LEDGER_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "ledger-ui-shots"
    target.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(target / f"{name}.png"), full_page=False)
    assert (target / f"{name}.png").stat().st_size > 10_000, f"{name}: the screenshot is (nearly) empty"


def renders(pg) -> int:
    return int(pg.get_attribute("body", "data-render") or 0)


# ------------------------------------------------------------------ security (no browser)
def _get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_requests_without_the_token_or_with_a_foreign_host_are_refused(world):
    server = world["server"]
    base, token, port = server.base, server.token, server.port
    assert _get(f"{base}/api/summary")[0] == 403
    assert _get(f"{base}/")[0] == 403
    assert _get(f"{base}/static/js/main.js")[0] == 403
    assert _get(f"{base}/api/live")[0] == 403
    assert _get(f"{base}/api/summary?token=wrong")[0] == 403
    cookie = {"Cookie": f"ledger-ui-token-{port}={token}"}
    assert _get(f"{base}/api/summary", {"Cookie": f"ledger-ui-token-{port}=nope"})[0] == 403
    status, _, body = _get(f"{base}/api/summary", cookie)
    assert status == 200 and json.loads(body)["project"] == PROJECT
    # DNS rebinding: right token, foreign Host
    assert _get(f"{base}/api/summary", {**cookie, "Host": f"evil.example:{port}"})[0] == 403
    assert _get(f"{base}/api/summary", {**cookie, "Host": "127.0.0.1:1"})[0] == 403
    # a cross-origin page cannot use the cookie
    assert _get(f"{base}/api/summary", {**cookie, "Origin": "http://evil.example"})[0] == 403
    # the URL token is traded for an HttpOnly, SameSite=Strict cookie and removed from the URL
    status, headers, _ = _get(f"{base}/?token={token}")
    assert status == 303 and headers["location"] == "/"
    set_cookie = headers["set-cookie"]
    assert f"ledger-ui-token-{port}={token}" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    status, headers, _ = _get(f"{base}/", cookie)
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    # read-only: anything but GET/HEAD is refused
    req = urllib.request.Request(f"{base}/api/summary", data=b"{}", headers=cookie, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403


def test_loopback_only_unless_explicitly_allowed(world):
    from ui.security import check_bind_host
    from ui.server import UIServer

    check_bind_host("127.0.0.1", False)
    check_bind_host("::1", False)
    with pytest.raises(ValueError, match="--allow-remote"):
        UIServer(world["history"], host="0.0.0.0")
    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["--db", str(world["base"] / "ledger.db"), "ui", "--host", "0.0.0.0", "--no-open"])
    assert result.exit_code != 0 and "--allow-remote" in result.output


# ------------------------------------------------------------------ views in the browser
def test_timeline_shows_agents_events_filters_and_live_events(page, world):
    lg, ids = world["ledger"], world["session"].ids
    events = list(lg.events(tenant_id="default", project_id=PROJECT))
    lanes = [el.get_attribute("data-key") for el in page.locator("[data-testid=lane]").all()]
    assert set(lanes) == {"architect-1", "coder-1", "ledger-exec", "reviewer-1"}
    marks = page.locator("[data-testid=mark]")
    assert marks.count() == len(events)
    assert page.locator(f"[data-testid=mark][data-id='{ids['plan']}'][data-kind=decision]").count() == 1
    assert page.locator("[data-testid=event-row]").count() == min(50, len(events))
    shot(page, "timeline")
    # filters: kind, then text
    before = renders(page)
    page.select_option("[data-testid=filter-kind]", "decision")
    wait_render(page, "timeline", before)
    decisions = [e for e in events if e.kind == "decision"]
    assert page.locator("[data-testid=mark]").count() == len(decisions)
    assert {m.get_attribute("data-kind") for m in page.locator("[data-testid=mark]").all()} == {"decision"}
    before = renders(page)
    page.fill("[data-testid=filter-q]", "empty input")
    wait_render(page, "timeline", before)
    shown = {m.get_attribute("data-id") for m in page.locator("[data-testid=mark]").all()}
    assert shown == {ids["fix"], ids["review"]}
    for clear in (lambda: page.fill("[data-testid=filter-q]", ""),  # (after its typing debounce)
                  lambda: page.select_option("[data-testid=filter-kind]", "")):
        before = renders(page)
        clear()
        wait_render(page, "timeline", before)
    # zoom in keeps working (wheel over the plot)
    before = renders(page)
    page.locator("[data-testid=zoom-in]").click()
    wait_render(page, "zoom", before)
    # live: an event recorded while the page is open appears without a reload
    page.locator("[data-testid=zoom-out]").click()
    page.wait_for_timeout(300)
    from nervous_system import Recorder

    late = Recorder(lg, project_id=PROJECT, agent_id="late-agent", agent_role="coder")
    new_id = late.decision("a decision recorded while the page is open", confidence=0.5)
    page.wait_for_selector(f"[data-testid=mark][data-id='{new_id}']", state="attached", timeout=15_000)
    assert "late-agent" in [el.get_attribute("data-key") for el in page.locator("[data-testid=lane]").all()]
    world["late"] = new_id


def test_scrubber_tree_equals_replay_at_that_moment(page, world, tmp_path):
    history, ids = world["history"], world["session"].ids
    page.goto(world["server"].base + "/#/scrubber")
    wait_render(page, "scrub")
    # drag to the middle of the history and to a few other places
    for value in ("5000", "2500", "9000"):
        before = renders(page)
        page.locator("[data-testid=scrubber]").fill(value)
        wait_render(page, "scrub", before)
        when = page.get_attribute("[data-testid=moment]", "data-when")
        shown = {el.get_attribute("data-path"): (el.get_attribute("data-hash"), el.get_attribute("data-mode"))
                 for el in page.locator("[data-testid=tree-file]").all()}
        out = tmp_path / f"replay-{value}"
        report = replay_local(history.ledger, "default", PROJECT, history.resolve(when), out)
        assert shown == report.tree, f"tree at {when}"
        assert page.input_value("[data-testid=restore-command]") == f"ledger restore --at '{when}'"
    # at the end: the shell command's version of src/tokens.py and the coder's parser
    before = renders(page)
    page.fill("[data-testid=when]", ids["shell"])
    page.press("[data-testid=when]", "Enter")
    wait_render(page, "scrub", before)
    assert page.get_attribute("[data-testid=moment]", "data-when") == ids["shell"]
    page.locator("[data-testid=tree-file][data-path='src/parser.py']").click()
    page.wait_for_selector("[data-testid=file-pane] pre.code")
    assert page.locator("[data-testid=file-pane] pre.code").inner_text().count("return list(tokens(text))") == 1
    # diff two moments: after the architect's changes (A) and after the shell command (B)
    page.fill("[data-testid=when]", ids["parser"])
    page.press("[data-testid=when]", "Enter")
    page.wait_for_selector(f"[data-testid=moment][data-when='{ids['parser']}']")
    page.locator("[data-testid=mark-a]").click()
    page.fill("[data-testid=when]", ids["shell"])
    page.press("[data-testid=when]", "Enter")
    page.wait_for_selector(f"[data-testid=moment][data-when='{ids['shell']}']")
    page.locator("[data-testid=mark-b]").click()
    page.wait_for_selector("[data-testid=diff-path]")
    assert sorted(page.locator("[data-testid=diff-path]").evaluate_all("els => els.map(e => e.dataset.path)")) == [
        "src/lexer.py", "src/parser.py", "src/tokens.py"]
    page.locator("[data-testid=diff-path][data-path='src/parser.py']").click()
    page.wait_for_selector(".patch pre.diff")
    assert "+    if not text:" in page.locator(".patch pre.diff").inner_text()
    shot(page, "scrubber")


def test_decision_card_changes_and_trace(page, world):
    ids = world["session"].ids
    page.goto(world["server"].base + f"/#/decision/{ids['plan']}")
    wait_render(page, "decision")
    assert page.inner_text("[data-testid=rationale]") == "split the parser into a lexer and a parser"
    assert page.locator("[data-testid=rejected] li").all_text_contents() == [
        "one big regular expression", "a parser generator"]
    assert page.inner_text("[data-testid=confidence]").strip() == "0.82"
    assert page.inner_text("[data-testid=trigger]") == "issue #12: parser too slow"
    caused = page.locator("[data-testid=caused-change]")
    assert {c.get_attribute("data-id") for c in caused.all()} == {ids["lexer"], ids["parser"]}
    assert "+from lexer import tokens" in page.inner_text(f"[data-testid=caused-change][data-id='{ids['parser']}']")
    spans = page.locator("[data-testid=span-row]")
    assert [s.get_attribute("data-name") for s in spans.all()] == ["chat plan", "execute_tool read_file"]
    assert page.locator("[data-testid=span-tokens]").first.inner_text() == "1200→350 tok"
    assert page.locator("[data-testid=span-duration]").first.inner_text().endswith(("ms", "µs", "s"))
    assert "1,200 tokens in, 350 out" in page.inner_text("[data-testid=waterfall] h3")
    shot(page, "decision")
    # a change opens with the decision behind it
    before = renders(page)
    page.goto(world["server"].base + f"/#/decision/{ids['edit']}")
    wait_render(page, "decision", before)
    assert page.inner_text("[data-testid=why]").startswith("handle empty input")


def test_file_history_and_blame(page, world):
    history, ids = world["history"], world["session"].ids
    page.goto(world["server"].base + "/#/file?path=src/tokens.py")
    wait_render(page, "file")
    rows = page.locator("[data-testid=history-row]")
    assert [r.get_attribute("data-id") for r in rows.all()] == [ids["shell"], ids["rename"], ids["lexer"]]
    assert page.locator("[data-testid=history-row] [data-testid=why]").all_text_contents() == [
        "run `sh -c 'sed -i '\"'\"'s/text.split()/text.split(None)/'\"'\"' src/tokens.py'` in " + str(world["base"] / "work"),
        "handle empty input; rename the lexer module", "split the parser into a lexer and a parser"]
    expected = blame(history, "src/tokens.py", history.resolve("now"))
    lines = page.locator("[data-testid=blame-line]")
    assert [line.get_attribute("data-event") for line in lines.all()] == [line.event_id for line in expected.lines]
    assert [line.event_id for line in expected.lines] == [ids["lexer"], ids["shell"]]
    shot(page, "file")
    before = renders(page)
    page.goto(world["server"].base + "/#/file?path=src/parser.py")
    wait_render(page, "file", before)
    assert page.locator("[data-testid=blame-line]").count() == PARSER_2.count(b"\n")


def test_audits_view(page, world):
    """With analytics installed: the reports from the ingested events; without: what to install."""
    try:
        from ingest.ingestor import Ingestor
        from ingest.sources import LocalSource
    except ImportError:
        page.goto(world["server"].base + "/#/audits")
        wait_render(page, "audits")
        assert "pip install 'context-ledger[analytics]'" in page.inner_text("[data-testid=audits-install]")
        shot(page, "audits")
        return
    Ingestor(world["server"].state.analytics_url, LocalSource(world["ledger"], tenant="default")).run()
    page.goto(world["server"].base + "/#/audits")
    wait_render(page, "audits")
    agents = page.locator("[data-testid=agents-table] tbody tr td:first-child").all_text_contents()
    assert {"architect-1", "coder-1", "ledger-exec", "reviewer-1"} <= set(agents)
    assert page.locator("[data-testid=activity-chart] rect").count() >= 1
    assert "src/parser.py" in page.inner_text("[data-testid=hot-files]")
    shot(page, "audits")


def test_blame_endpoint_is_ledger_blame(world):
    """The file view's blame is `ledger blame --json`, line for line."""
    from click.testing import CliRunner

    from cli import cli

    server = world["server"]
    cookie = {"Cookie": f"ledger-ui-token-{server.port}={server.token}"}
    status, _, body = _get(f"{server.base}/api/blame?path=src/parser.py", cookie)
    assert status == 200
    served = json.loads(body)["lines"]
    result = CliRunner().invoke(cli, ["--db", str(world["base"] / "ledger.db"), "--project", PROJECT,
                                      "blame", "src/parser.py", "--json"])
    assert result.exit_code == 0, result.output
    assert served == json.loads(result.output)


def test_front_end_ships_as_package_data():
    """Every file under ui/static is matched by pyproject's package-data (so a
    non-editable `pip install .` ships the front end), and the app references no
    network resource (no CDN)."""
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "ui*" in config["packages"]["find"]["include"]
    patterns = config["package-data"]["ui"]
    static = REPO_ROOT / "ui" / "static"
    files = [p.relative_to(REPO_ROOT / "ui").as_posix() for p in static.rglob("*") if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files
    for f in files:
        text = (REPO_ROOT / "ui" / f).read_text(errors="replace")
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", ""), f


def test_scrubber_trees_from_checkpoints_equal_build_tree(world, monkeypatch):
    """The server resumes trees from checkpoint trees; with a checkpoint every two
    changes, the tree at every change (by time and by event) is replay's."""
    import ui.state
    from replay import build_tree
    from schemas import format_timestamp_ns

    monkeypatch.setattr(ui.state, "_CHECKPOINT_STEP", 2)
    history = world["history"]
    state = ui.state.UIState(history)
    rows = list(history.changes(history.resolve("now")))
    assert len(rows) >= 5
    for row in reversed(rows):  # newest first: later trees are asked before their checkpoints exist
        for when in (row.event_id, format_timestamp_ns(row.time_ns)):
            moment = history.resolve(when)
            tree, conflicts = state.tree(moment)
            expected, expected_conflicts = build_tree(history.changes(moment))
            assert tree == expected and conflicts == len(expected_conflicts), when


def test_the_ui_reads_the_hub(tmp_path, cluster_file, tenant):
    """`ledger ui --source hub`: the same API over a HubHistory (the team's events)."""
    from nervous_system.recorder import Recorder
    from replay.hub import HubHistory
    from syncer.syncer import Syncer
    from tests.hub_fixtures import FakeClock, make_hub
    from ui.server import UIServer

    with Ledger(tmp_path / "laptop.db") as lg:
        rec = Recorder(lg, project_id="web", agent_id="remote-1", tenant_id=tenant, clock=FakeClock())
        why = rec.decision("write on another laptop", confidence=0.7)
        rec.file_change("a.txt", b"one\n")
        rec.file_change("a.txt", b"one\ntwo\n")
        hub = make_hub(cluster_file, tenant)
        Syncer(lg, hub).sync_once()
    with UIServer(HubHistory(hub, "web")) as server:
        cookie = {"Cookie": f"ledger-ui-token-{server.port}={server.token}"}
        summary = json.loads(_get(f"{server.base}/api/summary", cookie)[2])
        assert summary["source"] == "hub" and summary["events"] == 3
        tree = json.loads(_get(f"{server.base}/api/tree", cookie)[2])
        assert [f[0] for f in tree["files"]] == ["a.txt"]
        event = json.loads(_get(f"{server.base}/api/event/{why}", cookie)[2])
        assert len(event["caused"]) == 2 and event["event"]["hub_position"]
        blamed = json.loads(_get(f"{server.base}/api/blame?path=a.txt", cookie)[2])
        assert [line["rationale"] for line in blamed["lines"]] == ["write on another laptop"] * 2
