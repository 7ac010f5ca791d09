"""Redaction before storage (issue 15, section 1): 60 secret samples of 26 kinds (cloud
keys, VCS tokens, private keys, JWTs, passwords in URLs, high-entropy strings, ...) sent
through the SDK, ``ledger record``, the agent hooks and OTLP (``ledger serve``) are found
nowhere in the raw bytes of the SQLite file (+ WAL), of the hub (FoundationDB double,
after ``ledger sync``) or of ClickHouse (chdb, after ``ledger ingest``), while a control
marker sent alongside is found in each (so the search would see them). Redaction is on by
default, typed, deterministic, configurable (patterns, allow-list, off switch).

Every sample is generated at test time from a seeded random source: the repository holds
no literal secret-looking strings (all are FAKE, made by ``samples()``).
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from cli import cli
from ledger import Ledger
from ledger.errors import ConfigError
from ledger.detectors import Detector, might_hold_secret
from ledger.redaction import RedactionPolicy
from nervous_system import LedgerSpanProcessor, Recorder
from schemas import AgentMessage, FileMode, Operation, StateChange, SwarmEvent, new_event_id
from tests import fdb_double
from tests.collector_fixtures import run_client, start_collector
from tests.hub_fixtures import USE_REAL, FakeClock

A = string.ascii_letters + string.digits
U = string.ascii_uppercase + string.digits
LOW = string.ascii_lowercase + string.digits
H = "0123456789abcdef"
B64 = A + "+/"
URLSAFE = A + "-_"


def samples() -> list[tuple[str, str, tuple[str, ...]]]:
    """``[(expected placeholder type, text holding FAKE secrets, the secret values)]``."""
    rng = random.Random(15)

    def r(n: int, alphabet: str = A) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    out: list[tuple[str, str, tuple[str, ...]]] = []

    def add(kind: str, template: str, *secrets: str) -> None:
        out.append((kind, template.format(*secrets), secrets))

    add("aws-access-key", "aws configure set aws_access_key_id {}", "AKIA" + r(16, U))
    add("aws-access-key", "temporary creds: {} (expires soon)", "ASIA" + r(16, U))
    add("aws-access-key", '{{"AccessKeyId": "{}", "Region": "eu-west-1"}}', "AKIA" + r(16, U))
    add("aws-secret-key", "aws_secret_access_key = {}", r(40, B64))
    add("aws-secret-key", "export AWS_SECRET_ACCESS_KEY={}", r(40, B64))
    for prefix in ("ghp_", "gho_", "ghs_", "ghu_", "ghr_"):
        add("github-token", "git push https://x-access-token:{}@github.com/org/repo.git", prefix + r(36))
    add("github-token", "GH_TOKEN={} gh pr create", "github_pat_" + r(22) + "_" + r(59))
    add("github-token", "use token {} for the API", "github_pat_" + r(22) + "_" + r(59))
    add("gitlab-token", "curl --header 'PRIVATE-TOKEN: {}' https://gitlab.example.com/api/v4/projects", "glpat-" + r(20, URLSAFE))
    add("gitlab-token", "trigger with {}", "glptt-" + r(40, H))
    add("gitlab-token", "deploy token {} in CI", "gldt-" + r(24, URLSAFE))
    add("slack-token", "SLACK_BOT={}", "xoxb-" + r(11, string.digits) + "-" + r(13, string.digits) + "-" + r(24, LOW))
    add("slack-token", "user token {}", "xoxp-" + r(11, string.digits) + "-" + r(12, string.digits) + "-" + r(13, string.digits) + "-" + r(32, H))
    add("slack-token", "post to {}", "https://hooks.slack.com/services/T" + r(8, U) + "/B" + r(10, U) + "/" + r(24))
    add("stripe-key", "stripe.api_key = '{}'", "sk_live_" + r(24))
    add("stripe-key", "restricted key {}", "rk_live_" + r(24))
    add("stripe-key", "test mode key {}", "sk_test_" + r(24))
    add("openai-api-key", "OPENAI_API_KEY={}", "sk-proj-" + r(48, URLSAFE))
    add("openai-api-key", "client = OpenAI(api_key={})", "sk-" + r(20) + "T3BlbkFJ" + r(20))
    add("openai-api-key", "service account {}", "sk-svcacct-" + r(40, URLSAFE))
    add("anthropic-api-key", "ANTHROPIC_API_KEY={}", "sk-ant-api03-" + r(93, URLSAFE) + "AA")
    add("anthropic-api-key", "admin key {} rotated", "sk-ant-admin01-" + r(60, URLSAFE))
    for ctx in ("maps key {}", "GOOGLE_API_KEY={}", "?key={}&q=paris"):
        add("google-api-key", ctx, "AIza" + r(35, URLSAFE))
    for header in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY"):
        body = [r(64, B64) for _ in range(4)] + [r(20, B64) + "=="]
        block = f"-----BEGIN {header}-----\n" + "\n".join(body) + f"\n-----END {header}-----"
        text = f"here is the key:\n{block}\nkeep it safe" if header != "EC PRIVATE KEY" else \
            "config = " + json.dumps({"key": block})  # escaped newlines, as in tool input JSON
        out.append(("private-key", text, tuple(body)))
    for ctx in ("token={}", "cookie: session={}; Path=/", "the id token is {}"):
        jwt = ".".join([b64url(b'{"alg":"HS256","typ":"JWT"}'),
                        b64url(json.dumps({"sub": r(12), "iat": rng.randrange(10**9, 2 * 10**9)}).encode()),
                        r(43, URLSAFE)])
        add("jwt", ctx, jwt)
    add("password-in-url", "DATABASE_URL=postgres://app:{}@db.internal:5432/prod", r(16))
    add("password-in-url", "git clone https://deploy:{}@git.example.com/x.git", r(18))
    add("password-in-url", "redis://default:{}@cache:6379/0", r(20))
    add("password-in-url", "mongodb+srv://admin:{}@cluster0.example.net/app", r(14))
    add("npm-token", "npm token: {}", "npm_" + r(36))
    add("npm-token", "//registry.npmjs.org/:_authToken={}", "npm_" + r(36))
    add("pypi-token", "password = {}", "pypi-AgEIcHlwaS5vcmc" + r(80, URLSAFE))
    add("pypi-token", "TWINE_PASSWORD={} twine upload dist/*", "pypi-AgEIcHlwaS5vcmc" + r(90, URLSAFE))
    add("twilio-api-key", "account {} configured", "AC" + r(32, H))
    add("twilio-api-key", "api key sid {}", "SK" + r(32, H))
    add("sendgrid-api-key", "SENDGRID={}", "SG." + r(22, URLSAFE) + "." + r(43, URLSAFE))
    add("sendgrid-api-key", "mail via {}", "SG." + r(22, URLSAFE) + "." + r(43, URLSAFE))
    add("azure-key", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net",
        r(86, B64) + "==")
    add("azure-client-secret", "client secret {} for the app registration", r(3) + "8Q~" + r(34, A + "_~.-"))
    add("huggingface-token", "huggingface-cli login --token {}", "hf_" + r(34))
    add("high-entropy-string", 'signing = {{"material": "{}"}}', r(44, B64))
    add("secret-keyword", 'secret = "{}"', r(24))
    add("secret-keyword", 'db_password: "{}"', r(20))
    add("secret-assignment", "export DATABASE_PASSWORD={}", r(20))
    add("secret-assignment", "STRIPE_WEBHOOK_SECRET={}", "whsec_" + r(32))
    add("discord-bot-token", "bot token {}", "M" + r(23, URLSAFE) + "." + r(6, URLSAFE) + "." + r(27, URLSAFE))
    add("telegram-bot-token", "bot {} started", r(10, string.digits) + ":" + r(35, URLSAFE))
    add("mailchimp-access-key", "mailchimp {}", r(32, H) + "-us12")
    add("bearer-token", "Authorization: Bearer {}", r(40))
    return out


SAMPLES = samples()
ALL_SECRETS = sorted({s for _, _, secrets in SAMPLES for s in secrets})


def test_the_samples_are_many_and_varied():
    assert len(SAMPLES) >= 50 and len({kind for kind, _, _ in SAMPLES}) >= 15
    assert all(len(s) >= 14 for s in ALL_SECRETS)


@pytest.mark.parametrize("kind,text,secrets", SAMPLES, ids=[f"{i}-{k}" for i, (k, _, _) in enumerate(SAMPLES)])
def test_each_sample_is_replaced_by_a_typed_placeholder(kind, text, secrets):
    redacted, kinds = Detector().redact(text)
    for secret in secrets:
        assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted, redacted
    assert Detector().redact(redacted) == (redacted, [])  # idempotent: placeholders are not secrets


def test_samples_inside_json_strings_are_found_too():
    """Tool inputs and outputs arrive as JSON text: quotes and newlines are escaped."""
    text = json.dumps({"command": "\n".join(t for _, t, _ in SAMPLES)})
    redacted, _ = Detector().redact(text)
    assert [s for s in ALL_SECRETS if s in redacted] == []
    assert json.loads(redacted)["command"].count("[REDACTED:") >= len(SAMPLES)


def test_ordinary_text_passes_untouched_and_mostly_skips_the_scan():
    texts = [
        "Refactor the parser to stream lines instead of reading the whole file.",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b: fix the flaky test",
        'new_state_hash "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
        "event 0190a3b4-c5d6-7abc-8def-0123456789ab caused by 0190a3b4-c5d6-7abc-8def-0123456789ac",
        "def test_recording_an_event_loads_no_heavy_dependency(tmp_path):",
        "password = get_password_from_vault()",
        "token = os.environ['GITHUB_TOKEN']",
        "see https://docs.example.com/a/b/c?page=2",
        # false positives met on real histories (docs/trust.md, "Redaction")
        "app_secret = 'YOUR_APP_SECRET'",
        "ENCODED_PASSWORD = compat.quote(PASSWORD, '')",
        "LEDGER_CLICKHOUSE_URL=http://ledger_ingest:$LEDGER_INGEST_PASSWORD@localhost:8123",
        "export URL=http://reader:${READER_PASSWORD}@localhost:8123",
        "help='ClickHouse URL: http(s)://user:password@host:8123'",
        '"integrity": "sha512-' + "tvSh6bLvEbd97APD31AnojOrRC3AmcRj5R8sF8QIQitu3x2ucOb1kKmTkGDw41kjva" + '==",',
        '{"traceId": "4c70ebb8b69e6f090a3c75e1d88236c8", "spanId": "ee1bc52f7e6943aa"}',
        "DIGEST = re.compile(r'^[0-9a-f]{64}$')",
    ]
    for text in texts:
        assert Detector().redact(text) == (text, []), text
    assert not might_hold_secret(texts[0]) and not might_hold_secret("ok, 12 files changed")


def test_configured_patterns_and_allow_list():
    d = Detector(patterns={"acme-token": r"acme_[0-9a-f]{32}", "internal": r"ticket-key=(\w{10,})"},
                 allow=[r"AKIA[0-9A-Z]*EXAMPLE"])
    acme = "acme_" + "0123456789abcdef" * 2
    text, kinds = d.redact(f"use {acme} and ticket-key=abcdefghijkl and AKIAIOSFODNN7EXAMPLE")
    assert text == "use [REDACTED:acme-token] and ticket-key=[REDACTED:internal] and AKIAIOSFODNN7EXAMPLE"
    with pytest.raises(ValueError, match="bad"):
        Detector(patterns={"bad": "("})


def test_every_text_field_of_every_kind_is_redacted(ledger_path):
    kind, text, secrets = next(s for s in SAMPLES if s[0] == "github-token")
    common = dict(tenant_id="t", project_id="p", agent_id="a", timestamp=1)
    span = {"name": f"tool {text}", "status_message": text, "attributes": {"in": text, "list": [text, 3], "n": 1},
            "resource_attributes": {"env": text}, "scope_name": text,
            "events": [{"name": text, "attributes": {"out": text}}],
            "links": [{"trace_id": "ab" * 16, "span_id": "cd" * 8, "attributes": {"why": text}}]}
    events = [
        SwarmEvent(event_id=new_event_id(), decision={"rationale": text, "input_trigger": text,
                                                       "rejected_alternatives": [text], "memory_ids": [text]}, **common),
        SwarmEvent(event_id=new_event_id(), message={"content": text, "sender": text, "recipients": [text]}, **common),
        SwarmEvent(event_id=new_event_id(), signal={"status": text, "detail": text}, **common),
        SwarmEvent(event_id=new_event_id(), span=span, trace_id="ab" * 16, span_id="ef" * 8, **common),
        SwarmEvent(event_id=new_event_id(), state_change=StateChange(
            target_resource="a.txt", operation=Operation.CREATE, new_state_hash="0" * 64, file_mode=FileMode.REGULAR,
            diff_patch=f"--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1 @@\n+{text}\n"), **common),
    ]
    with Ledger(ledger_path) as lg:
        lg.put_blob(b"x", tenant_id="t")
        for e in events:
            if e.state_change:
                e = e.model_copy(update={"state_change": e.state_change.model_copy(
                    update={"new_state_hash": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"})})
            lg.append(e)
        stored = [s.event.model_dump_json() for s in lg.events(order="seq")]
    for js in stored:
        assert secrets[0] not in js and "[REDACTED:github-token]" in js
    assert json.loads(stored[3])["span"]["attributes"]["n"] == 1  # non-text values untouched
    assert secrets[0].encode() not in raw(ledger_path)


def test_same_input_same_stored_event_so_retries_stay_idempotent(ledger_path):
    text = SAMPLES[0][1]
    event = SwarmEvent(event_id=new_event_id(), tenant_id="t", project_id="p", agent_id="a", timestamp=1,
                       message=AgentMessage(content=text))
    with Ledger(ledger_path) as lg:
        first = lg.append(event)
        again = lg.append(event)  # the retry of a producer: same id, same input
    assert first.inserted and not again.inserted and again.seq == first.seq
    policy = RedactionPolicy()
    assert policy.redact_event(event) == policy.redact_event(event)
    assert policy.redact_event(policy.redact_event(event)) == policy.redact_event(event)


def test_on_by_default_and_off_with_the_setting(ledger_path, monkeypatch, tmp_path):
    text = SAMPLES[0][1]
    Recorder(ledger_path, project_id="p", agent_id="a").message(text)
    assert SAMPLES[0][2][0].encode() not in raw(ledger_path)
    config = tmp_path / "ledger.toml"
    config.write_text("redact = false\n")
    monkeypatch.setenv("LEDGER_CONFIG", str(config))
    off = ledger_path.with_name("off.db")
    Recorder(off, project_id="p", agent_id="a").message(text)
    assert SAMPLES[0][2][0].encode() in raw(off)
    config.write_text('[redact_patterns]\nbadly = "("\n')
    # the pipeline is built on the first write: reading (replay, log) never needs it
    with Ledger(ledger_path.with_name("bad.db")) as lg:
        assert lg.count() == 0
        with pytest.raises(ConfigError, match="redact_patterns"):
            lg.append(SwarmEvent(event_id=new_event_id(), tenant_id="t", project_id="p", agent_id="a",
                                 timestamp=1, message=AgentMessage(content=text)))
        assert lg.count() == 0


def raw(db: Path) -> bytes:
    wal = Path(str(db) + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def raw_dir(path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file())


# ---------------------------------------------------------------------------------------------
# every producer, every store

def _chunks(n: int) -> list[list[tuple[int, tuple]]]:
    indexed = list(enumerate(SAMPLES))
    return [indexed[i::n] for i in range(n)]


def _via_sdk(db: Path) -> None:
    with Ledger(db) as lg:
        rec = Recorder(lg, project_id="web", agent_id="sdk", clock=FakeClock())
        provider = TracerProvider()
        provider.add_span_processor(LedgerSpanProcessor(lg, project_id="web", agent_id="sdk-spans"))
        tracer = provider.get_tracer("test")
        for i, (_, text, _) in enumerate(SAMPLES):
            rec.decision(f"CONTROL_SDK_{i} because {text}", input_trigger=text, rejected_alternatives=[text])
            rec.message(f"CONTROL_SDK_{i} {text}")
            rec.signal("ok", detail=text)
            with tracer.start_as_current_span(f"tool {i}") as span:
                span.set_attribute("tool.input", text)
                span.add_event("output", {"text": text})
                span.set_status(Status(StatusCode.ERROR, text))
        provider.shutdown()


def _via_record(db: Path) -> None:
    lines = []
    for i, (_, text, _) in enumerate(SAMPLES):
        lines.append({"message": {"content": f"CONTROL_JSONL_{i} {text}"}})
        lines.append({"decision": {"rationale": text, "input_trigger": text}})
    res = CliRunner().invoke(cli, ["--db", str(db), "--project", "web", "record", "--agent-id", "jsonl"],
                             input="".join(json.dumps(x) + "\n" for x in lines))
    assert res.exit_code == 0, res.output


def _via_hooks_and_otlp(db: Path, ws: Path) -> None:
    col = start_collector(db)
    try:
        for n, chunk in enumerate(_chunks(4)):
            prompt = "\n".join(f"CONTROL_HOOK_{i} {text}" for i, (_, text, _) in chunk)
            p = run_client("claude-code", {"hook_event_name": "UserPromptSubmit", "session_id": "s1",
                                           "prompt": prompt, "prompt_id": f"p{n}", "cwd": str(ws)},
                           db, ws, project="web", extra=("--port", str(col.port)))
            assert p.returncode == 0, p.stderr
            assert col.hook("claude-code", {
                "hook_event_name": "PostToolUse", "session_id": "s1", "tool_name": "Bash", "tool_use_id": f"t{n}",
                "tool_input": {"command": "\n".join(t for _, (_, t, _) in chunk)},
                "tool_response": {"stdout": prompt, "stderr": "", "success": True}, "cwd": str(ws)},
                {"project": "web", "root": str(ws), "delivery": f"d{n}"}) == 200
        spans = []
        for i, (_, text, _) in enumerate(SAMPLES):
            spans.append({
                "traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": f"CONTROL_OTLP_{i}", "kind": 1,
                "startTimeUnixNano": "1796000000000000000", "endTimeUnixNano": "1796000000500000000",
                "attributes": [{"key": "gen_ai.tool.call.arguments", "value": {"stringValue": text}},
                               {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": text}]}}}],
                "events": [{"timeUnixNano": "1796000000100000000", "name": "log",
                            "attributes": [{"key": "body", "value": {"stringValue": text}}]}],
                "status": {"code": 2, "message": text}})
        req = {"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "otlp-agent"}},
            {"key": "ledger.project.id", "value": {"stringValue": "web"}}]},
            "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
        status, body, _ = col.post("/v1/traces", json.dumps(req).encode(), {"Content-Type": "application/json"})
        assert status == 200, body
    finally:
        col.stop()


@pytest.mark.skipif(USE_REAL, reason="greps the FoundationDB double's raw store")
def test_no_sample_reaches_any_store_from_any_producer(ledger_path, isolated_state, tmp_path, cluster_file, tenant):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("hello\n")
    _via_sdk(ledger_path)
    _via_record(ledger_path)
    _via_hooks_and_otlp(ledger_path, ws)

    # SQLite: the stored bodies (a long body spans overflow pages, so a string may be cut
    # by page headers in the file) and every raw byte of the file and its WAL
    with Ledger(ledger_path) as lg:
        stored = [s.body for s in lg.events()]
        redacted = sum(s.event.model_dump_json().count("[REDACTED:") for s in lg.events())
    bodies = b"\x00".join(stored)
    for control in ("CONTROL_SDK_59", "CONTROL_JSONL_59", "CONTROL_HOOK_59", "CONTROL_OTLP_59"):
        assert control.encode() in bodies, control  # every producer's text was stored
    assert redacted >= 8 * len(SAMPLES)
    local = raw(ledger_path)
    assert b"CONTROL_OTLP_10" in local
    leaked = [s for s in ALL_SECRETS if s.encode() in local or s.encode() in bodies]
    assert leaked == [], f"{len(leaked)} secrets in the SQLite file"

    # the hub: `ledger sync` into the FoundationDB double, then its raw key/values
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "sync", "--cluster-file", cluster_file, "--json"])
    assert res.exit_code == 0, res.output
    hub_bytes = b"".join(k + v for k, v in fdb_double.dump(cluster_file))
    assert b"CONTROL_HOOK_59" in hub_bytes and b"CONTROL_OTLP_59" in hub_bytes
    assert [s for s in ALL_SECRETS if s.encode() in hub_bytes] == []

    # ClickHouse: `ledger ingest` into embedded chdb, then its data directory and a query
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "ingest", "--json"])
    assert res.exit_code == 0, res.output
    from tests.analytics_helpers import analytics_url, ch_rows

    url = analytics_url(isolated_state)
    assert ch_rows(url, "SELECT count() FROM analytics.swarm_events WHERE position(event_json, 'CONTROL_OTLP_59') > 0") \
        == [(1,)]
    found = ch_rows(url, "SELECT count() FROM analytics.swarm_events WHERE multiSearchAny(event_json, %(s)s)",
                    {"s": ALL_SECRETS[:200]})
    assert found == [(0,)]
    ch_raw = raw_dir(isolated_state / "analytics")
    assert ch_raw and [s for s in ALL_SECRETS if s.encode() in ch_raw] == []
