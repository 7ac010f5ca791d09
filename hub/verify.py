"""``ledger verify --source hub``: check what the hub holds of a ledger (docs/trust.md).

1. The chain the hub keeps for the ledger (``hub.chains``): recomputed from the genesis,
   its checkpoints verified with the key you trust (``--public-key``, else the key
   registered on the hub; a local key file that differs from it is a problem).
2. The hub's events against that chain: every event the chain says is on the hub (the
   hub saw it on arrival, or the local outbox says it was sent) must be there with a body
   of the recorded digest (else ``removed``/``modified``), in the order of the chain
   (else ``reordered``); an event in the hub log of the same projects that is in no
   registered ledger's chain is ``inserted`` (or came through a bundle, which carries no
   chain).
3. The local ledger against the hub's copy: the first seq where they differ (a local
   ledger rewritten or replaced after it synced).
"""

from __future__ import annotations

import hashlib

from ledger import keys
from ledger.checkpoints import Checkpoint
from ledger.verify import Link, Problem, VerifyReport, check_chain, local_links
from schemas import event_from_bytes


def _hub_links(hub, ledger_id: str) -> tuple[list, list[dict], bytes | None]:
    links, after, cps, public = [], 0, [], None
    while True:
        st = hub.chain_state(ledger_id, after_seq=after, limit=10_000)
        if after == 0:
            cps, public = st["checkpoints"], st["public_key"]
        links.extend(st["links"])
        if len(st["links"]) < 10_000:
            return links, cps, public
        after = st["links"][-1].seq


def verify_hub(hub, ledger, *, public_key: bytes | None = None) -> VerifyReport:
    """Verify the hub's copy of ``ledger``'s chain and the hub's events against it (see
    the module docstring). ``hub``: a ``HubClient`` with the chain methods (``Hub`` or
    the gateway client). Returns a ``VerifyReport`` (``source`` "hub")."""
    ledger_id = ledger.ledger_id
    hub_links, cp_dicts, registered = _hub_links(hub, ledger_id)
    if registered is None:
        report = VerifyReport(source="hub", ledger_id=ledger_id)
        report.problems.append(Problem("unsigned", None, None,
                                       "the hub holds no chain of this ledger: run `ledger sync` first"))
        return report
    local_key = None
    if keys.key_path(ledger.path).exists():
        local_key = keys.public_raw(keys.signing_key(ledger.path))
    trusted = public_key or registered
    links = [Link(h.seq, h.event_id, h.digest, h.chain, None, h.removed) for h in hub_links]
    cps = [Checkpoint.from_dict(c) for c in cp_dicts]
    report = check_chain(links, ledger_id, cps, public_key=trusted, source="hub")
    report.key_pinned = public_key is not None or local_key is not None
    if local_key is not None and local_key != registered:
        report.problems.append(Problem(
            "forged-checkpoint", None, None,
            f"the hub has key {keys.fingerprint(registered)} registered for this ledger, the local key file is "
            f"{keys.fingerprint(local_key)}"))

    # 2. the hub's events against the chain
    conn = ledger._conn()
    synced = {r[0] for r in conn.execute("SELECT event_id FROM events WHERE hub_versionstamp IS NOT NULL")}
    by_project: dict[str, list] = {}
    for h in hub_links:
        if h.project_id and not h.removed:
            by_project.setdefault(h.project_id, []).append(h)
    others: set[str] = set()
    for other in hub.chain_ledgers():
        if other != ledger_id:
            others.update(h.event_id for h in _hub_links(hub, other)[0])
    mine = {h.event_id for h in hub_links}
    for project, plinks in by_project.items():
        found: dict[str, tuple[int, bytes, bytes]] = {}  # event id -> (order, position, body digest)
        for order, record in enumerate(hub.iter_log(project)):
            digest = hashlib.sha256(bytes(record.body)).digest()
            try:
                event_id = event_from_bytes(bytes(record.body)).event_id
            except Exception:  # noqa: BLE001 - an unreadable body is itself the finding
                report.problems.append(Problem("modified", None, None,
                                               f"the hub log entry at position {record.position.hex()} of project "
                                               f"{project!r} cannot be read"))
                continue
            found[event_id] = (order, record.position, digest)
            if event_id not in mine and event_id not in others:
                report.problems.append(Problem(
                    "inserted", None, event_id,
                    f"event at hub position {record.position.hex()} of project {project!r} is in no laptop's "
                    "chain (inserted on the hub, or imported from a bundle, which carries no chain)"))
        placed = []  # (order, link) of the chain's events found on the hub, in seq order
        for h in plinks:
            expected = h.on_hub or h.event_id in synced
            got = found.get(h.event_id)
            if got is None:
                if expected:
                    report.problems.append(Problem("removed", h.seq, h.event_id,
                                                   f"the hub no longer holds it (project {project!r})"))
                continue
            order, position, digest = got
            if digest != h.digest:
                report.problems.append(Problem("modified", h.seq, h.event_id,
                                               f"the hub's body at position {position.hex()} does not match the "
                                               "digest in the chain"))
            placed.append((order, h))
        ranks = sorted(order for order, _ in placed)
        by_order = {order: h for order, h in placed}
        for (order, h), rank in zip(placed, ranks):
            if order != rank:  # the first event not where the chain's order puts it
                other = by_order[rank]
                report.problems.append(Problem(
                    "reordered", h.seq, h.event_id,
                    f"the hub log of project {project!r} has seq {other.seq} (event {other.event_id}) where this "
                    "event belongs: their order on the hub differs from the chain's"))
                break

    # 3. the local ledger against the hub's copy
    local = {lk.seq: lk for lk in local_links(conn)}
    for h in hub_links:
        mine_lk = local.get(h.seq)
        if mine_lk is not None and (mine_lk.chain != h.chain or mine_lk.event_id != h.event_id):
            report.problems.append(Problem(
                "modified", h.seq, mine_lk.event_id,
                f"the local ledger differs from the hub's copy of its chain at seq {h.seq} (the hub holds event "
                f"{h.event_id}): the local ledger was rewritten after it synced"))
            break
    report.problems.sort(key=lambda p: (p.seq if p.seq is not None else 1 << 62, p.kind))
    return report
