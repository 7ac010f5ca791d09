"""Tenant isolation is a security boundary at the gateway: with tenant A's tokens (or
forged, revoked, expired ones) no request reads or changes tenant B's events, blobs,
progress keys or upload sessions; every attempt is refused and logged, and no answer
names B or its data."""

from __future__ import annotations

import base64
import os

import httpx

from hub.http_client import HttpHub
from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from syncer.syncer import Syncer
from tests.hub_fixtures import FakeClock, make_hub


def test_cross_tenant_attempts_are_refused_and_logged(tmp_path, gateway, make_token, shared_cluster_file,
                                                      tenant, other_tenant):
    a, b = tenant, other_tenant
    secret = b"B's secret content " + os.urandom(8).hex().encode()
    with Ledger(tmp_path / "b.db") as lb:
        rec = Recorder(lb, project_id="web", agent_id="b-agent", tenant_id=b, clock=FakeClock())
        rec.decision("B's private plan")
        rec.file_change("src/secret.txt", secret)
        Recorder(lb, project_id="b-only", agent_id="b-agent", tenant_id=b).message("only B has this project")
        Syncer(lb, HttpHub(gateway.url, make_token(b, "write"), b)).sync_once()
        b_event = next(lb.events(tenant_id=b, project_id="web")).event
        b_ledger_id = lb.ledger_id
    b_digest = sha256_hex(secret)
    with Ledger(tmp_path / "a.db") as la:
        Recorder(la, project_id="web", agent_id="a-agent", tenant_id=a).message("A's note")
        a_event = next(la.events()).event

    a_read, a_write = make_token(a, "read"), make_token(a, "write")
    b_revoked = make_token(b, "admin")
    from hub.connection import open_database
    from hub.tokens import revoke_token

    revoke_token(open_database(shared_cluster_file), b_revoked)
    b_expired = make_token(b, "admin", expires_ns=1)
    b_write = make_token(b, "write")
    b_id = b_write.split("_")[1]
    forged = f"clh_{b_id}_{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"
    b_upload = httpx.post(f"{gateway.url}/v1/projects/web/blobs/{'e' * 64}/uploads",
                          headers={"Authorization": f"Bearer {b_write}"}).json()["upload_id"]

    def ev(event, **changes):
        return base64.b64encode(event.model_copy(update=changes).to_bytes()).decode()

    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    finish = {"size": 1, "stored_size": 1, "chunks": 1, "encoding": "raw"}
    attempts = [
        # (what, headers, method, path, body kwargs, expected status)
        ("no token", {}, "GET", "/v1/projects", {}, 401),
        ("token in the query string", {}, "GET", f"/v1/projects?token={b_write}", {}, 401),
        ("Basic scheme with B's token", {"Authorization": f"Basic {b_write}"}, "GET", "/v1/projects", {}, 401),
        ("two tokens in one header", {"Authorization": f"Bearer {a_read} {b_write}"}, "GET", "/v1/projects", {}, 401),
        ("B's token id alone", bearer(f"clh_{b_id}"), "GET", "/v1/projects", {}, 401),
        ("B's token id, forged secret", bearer(forged), "GET", "/v1/projects/web/log", {}, 401),
        ("unknown token", bearer("clh_000000000000_" + "A" * 43), "GET", "/v1/projects", {}, 401),
        ("B's revoked token", bearer(b_revoked), "GET", "/v1/projects/web/log", {}, 401),
        ("B's expired token", bearer(b_expired), "GET", "/v1/projects/web/log", {}, 401),
        ("forged tenant header", {**bearer(b_revoked), "X-Tenant": b, "X-Ledger-Tenant": b}, "GET",
         "/v1/projects", {}, 401),
        ("B's blob with A's read token", bearer(a_read), "GET", f"/v1/projects/web/blobs/{b_digest}", {}, 404),
        ("B's blob in B's project name", bearer(a_read), "GET", f"/v1/projects/b-only/blobs/{b_digest}", {}, 404),
        ("write an event of tenant B", bearer(a_write), "POST", "/v1/events",
         {"json": {"events": [ev(a_event, tenant_id=b, event_id=b_event.event_id)]}}, 403),
        ("a batch mixing A and B", bearer(a_write), "POST", "/v1/events",
         {"json": {"events": [ev(a_event), ev(b_event)]}}, 403),
        ("B's progress key via B's event", bearer(a_write), "POST", "/v1/events",
         {"json": {"origin": b_ledger_id, "last_seq": 10**9, "events": [ev(b_event)]}}, 403),
        ("finish B's upload session", bearer(a_write), "POST",
         f"/v1/projects/web/blobs/{'e' * 64}/uploads/{b_upload}/finish", {"json": finish}, 400),
        ("poison B's digest with other bytes", bearer(a_write), "POST", "/v1/projects/web/blobs",
         {"json": {"blobs": [{"digest": b_digest, "size": 4, "stored_size": 4, "chunks": 1, "encoding": "raw",
                              "data": base64.b64encode(b"evil").decode()}]}}, 400),
        ("read scope writes", bearer(a_read), "POST", "/v1/events", {"json": {"events": []}}, 403),
        ("write scope reads the log", bearer(a_write), "GET", "/v1/projects/web/log", {}, 403),
        ("write scope reads B's blob", bearer(a_write), "GET", f"/v1/projects/web/blobs/{b_digest}", {}, 403),
        ("write scope lists projects", bearer(a_write), "GET", "/v1/projects", {}, 403),
        ("write scope reads progress", bearer(a_write), "GET", "/v1/projects/web/laptops", {}, 403),
        ("bad position to read B's log", bearer(a_read), "GET", "/v1/projects/web/log?after=zz", {}, 400),
    ]
    answers = []
    for what, headers, method, path, kwargs, status in attempts:
        r = httpx.request(method, gateway.url + path, headers=headers, **kwargs)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert "error" in r.json(), what
        answers.append(r.text)
    assert len(attempts) >= 20
    for text in answers:
        assert b not in text and "B's private plan" not in text and secret.decode() not in text
    refusals = gateway.refusals()
    assert len(refusals) >= len(attempts)
    assert all(r["tenant"] in (a, None) for r in refusals[-len(attempts):] if r["tenant"] != b)
    reasons = [r["reason"] for r in refusals]
    for reason in ("missing", "malformed", "wrong secret", "unknown", "revoked", "expired", "scope",
                   "tenant_mismatch", "not_found", "bad_request"):
        assert reason in reasons, reason
    # what A can see: its own (empty) world; B's data and progress unchanged
    reader = HttpHub(gateway.url, a_read, a)
    assert reader.projects() == [] and reader.read_log("web") == [] and reader.read_log("b-only") == []
    assert reader.laptops("web") == {}
    hub_b = make_hub(shared_cluster_file, b)
    assert sorted(hub_b.projects()) == ["b-only", "web"]
    assert hub_b.read_blob("web", b_digest) == secret
    assert hub_b.laptops("web")[b_ledger_id][0] < 10**9
    assert len(hub_b.read_log("web")) == 2
    # B's ids behave as absent for A: A may write its own event under the same id
    with Ledger(tmp_path / "a2.db") as la2:
        la2.append(a_event.model_copy(update={"event_id": b_event.event_id}))
        assert Syncer(la2, HttpHub(gateway.url, a_write, a)).sync_once().sent == 1
