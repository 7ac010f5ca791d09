"""Verification of a hash chain (``ledger.chain``) and its signed checkpoints
(``ledger.checkpoints``): the local ledger, a proof file, or what a hub holds.

The verifier walks the links in seq order and names the FIRST thing wrong:

* ``modified``: an event's body no longer hashes to its recorded digest, or its link
  was rewritten; or the chain up to a signed checkpoint differs from the signed head
  (everything was recomputed consistently: the range is named);
* ``removed``: seqs are missing between two links (or after the last one: the ledger's
  own sequence counter, or a checkpoint, goes further than the chain);
* ``inserted``: a link the chain does not go through (the next event links to the one
  before it), or a row with no link at all (written around the write path);
* ``reordered``: two neighbouring events are in each other's place;
* ``forged-checkpoint``: a checkpoint whose signature does not verify with the trusted
  public key (or is signed by another key).

Events removed on purpose (retention, ``projects rm``) are links without a body
(``chain_removed``): they verify. What a chain proves and what it cannot: docs/trust.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ledger import chain as chainmod
from ledger import keys
from ledger.checkpoints import Checkpoint

PROOF_FORMAT = "context-ledger-proof"
PROOF_VERSION = 1


@dataclass(frozen=True)
class Link:
    """One position of a chain: ``seq``, ``event_id``, the recorded ``digest`` and
    ``chain`` value (32 bytes each, None when missing), ``body`` when the event is
    stored (None for removed events and proofs: the recorded digest is then trusted),
    ``removed`` when it was removed on purpose."""

    seq: int
    event_id: str
    digest: bytes | None
    chain: bytes | None
    body: bytes | None = None
    removed: bool = False


@dataclass
class Problem:
    """What is wrong at one place: ``kind`` (see the module docstring), ``seq`` and
    ``event_id`` where known, and ``detail`` (one sentence)."""

    kind: str
    seq: int | None
    event_id: str | None
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "chain"
        if self.event_id:
            where += f" (event {self.event_id})"
        return f"{self.kind}: {where}: {self.detail}"


@dataclass
class VerifyReport:
    """Result of a verification. ``ok`` when nothing is wrong; ``problems`` sorted by
    seq, the first is ``first``; ``events`` stored events checked, ``removed`` links of
    events removed on purpose, ``checkpoints`` signed checkpoints checked, ``head`` the
    newest chain value (hex), ``last_seq``, ``key_fingerprint`` of the trusted key and
    ``key_pinned`` (False when only the key stored with the checkpoints was available)."""

    source: str
    ledger_id: str
    events: int = 0
    removed: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    head: str = ""
    last_checkpoint_seq: int = 0
    key_fingerprint: str = ""
    key_pinned: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["first"] = asdict(self.first) if self.first else None
        return d


def _sort_key(p: Problem) -> tuple:
    return (p.seq if p.seq is not None else 1 << 62, p.kind)


def check_chain(links: Sequence[Link], ledger_id: str, checkpoints: Iterable[Checkpoint], *,
                public_key: bytes | None, source: str, counter: int | None = None,
                require_signed_head: bool = False) -> VerifyReport:
    """Verify ``links`` (sorted by seq) from the ledger's genesis, and ``checkpoints``
    with ``public_key`` (raw Ed25519; None: the key stored with each checkpoint, which
    proves nothing against someone who can rewrite the file — ``key_pinned`` False).
    ``counter``: the highest seq the store ever handed out (SQLite's AUTOINCREMENT
    counter), to detect events removed from the end. ``require_signed_head``: links
    after the last checkpoint are a problem (a proof must end on a signed head).
    Returns a ``VerifyReport``."""
    report = VerifyReport(source=source, ledger_id=ledger_id)
    problems = report.problems
    checkpoints = list(checkpoints)
    wanted = {cp.seq for cp in checkpoints}
    recomputed: dict[int, bytes] = {}
    genesis = chainmod.genesis(ledger_id)
    expected = genesis  # the chain recomputed from the bodies (or trusted digests)
    n = len(links)

    def stored_chain(j: int) -> bytes:
        return genesis if j < 0 else (links[j].chain or b"")

    def links_to(j_prev: int, j: int) -> bool:
        lk = links[j]
        return lk.digest is not None and lk.chain is not None and chainmod.link(stored_chain(j_prev), lk.digest) == lk.chain

    i = 0
    prev = -1  # index of the link the next one should follow
    while i < n:
        lk = links[i]
        actual = hashlib.sha256(lk.body).digest() if lk.body is not None else lk.digest
        if lk.removed:
            report.removed += 1
        else:
            report.events += 1
        if lk.digest is None or lk.chain is None:
            problems.append(Problem("inserted", lk.seq, lk.event_id,
                                    "it has no chain link: it was written around the ledger's write path"))
            i += 1
            if actual is not None and lk.seq in wanted:
                recomputed[lk.seq] = expected
            continue  # the next event should link to the one before it
        if actual != lk.digest:
            problems.append(Problem("modified", lk.seq, lk.event_id,
                                    "its stored body no longer matches the digest recorded when it was written"))
        elif not links_to(prev, i):
            seq_prev = links[prev].seq if prev >= 0 else 0
            if i + 1 < n and links_to(prev, i + 1):
                if links_to(i + 1, i):
                    nxt = links[i + 1]
                    problems.append(Problem(
                        "reordered", lk.seq, lk.event_id,
                        f"it was recorded after seq {nxt.seq} (event {nxt.event_id}); the two are in each "
                        "other's place"))
                    expected = chainmod.link(expected, _actual(nxt))
                    expected = chainmod.link(expected, actual)
                    for j in (i, i + 1):
                        if links[j].seq in wanted:
                            recomputed[links[j].seq] = expected
                    prev, i = i, i + 2
                    continue
                problems.append(Problem("inserted", lk.seq, lk.event_id,
                                        f"the chain does not go through it: seq {links[i + 1].seq} links to "
                                        f"seq {seq_prev} directly"))
                i += 1
                continue  # skip it: the next one links to prev
            if i >= 1 and prev == i - 1 and links_to(i - 2, i):
                ins = links[i - 1]
                problems.append(Problem("inserted", ins.seq, ins.event_id,
                                        f"the chain does not go through it: seq {lk.seq} links to the "
                                        f"event before it"))
            elif lk.seq > seq_prev + 1:
                gap = f"seq {seq_prev + 1}" if lk.seq == seq_prev + 2 else f"seqs {seq_prev + 1}-{lk.seq - 1}"
                problems.append(Problem("removed", seq_prev + 1, None,
                                        f"{gap} missing before seq {lk.seq} (event {lk.event_id}): the chain "
                                        f"links seq {lk.seq} to an event that is no longer stored"))
            else:
                problems.append(Problem("modified", lk.seq, lk.event_id,
                                        "its chain link does not follow from the event before it (the row's "
                                        "digest or link was rewritten, or the event before it was replaced)"))
        expected = chainmod.link(expected, actual)
        if lk.seq in wanted:
            recomputed[lk.seq] = expected
        prev = i
        i += 1

    last_seq = links[-1].seq if links else 0
    report.last_seq = last_seq
    report.head = (links[-1].chain or b"").hex() if links else genesis.hex()
    if counter is not None and counter > last_seq:
        gap = f"seq {counter}" if counter == last_seq + 1 else f"seqs {last_seq + 1}-{counter}"
        problems.append(Problem("removed", last_seq + 1, None,
                                f"{gap} removed from the end: the ledger handed out seqs up to {counter}, "
                                f"the chain ends at seq {last_seq}"))

    _check_checkpoints(report, checkpoints, recomputed, public_key, last_seq, links)
    if require_signed_head and links and not problems and report.last_checkpoint_seq < last_seq:
        problems.append(Problem("unsigned", report.last_checkpoint_seq + 1, None,
                                f"links after seq {report.last_checkpoint_seq} are covered by no signed checkpoint"))
    problems.sort(key=_sort_key)
    return report


def _actual(lk: Link) -> bytes:
    return hashlib.sha256(lk.body).digest() if lk.body is not None else (lk.digest or b"")


def _check_checkpoints(report: VerifyReport, checkpoints: list[Checkpoint], recomputed: dict[int, bytes],
                       public_key: bytes | None, last_seq: int, links: Sequence[Link]) -> None:
    report.key_pinned = public_key is not None
    trusted = public_key or (checkpoints[0].public_key if checkpoints else None)
    report.key_fingerprint = keys.fingerprint(trusted) if trusted else ""
    previous_seq = 0
    for cp in checkpoints:
        report.checkpoints += 1
        if cp.ledger_id != report.ledger_id:
            report.problems.append(Problem("forged-checkpoint", cp.seq, None,
                                           f"the checkpoint is of ledger {cp.ledger_id}, not {report.ledger_id}"))
        elif trusted is not None and cp.public_key != trusted:
            report.problems.append(Problem(
                "forged-checkpoint", cp.seq, None,
                f"the checkpoint is signed by key {keys.fingerprint(cp.public_key)}, not the ledger's key "
                f"{keys.fingerprint(trusted)}"))
        elif not cp.valid(trusted):
            report.problems.append(Problem(
                "forged-checkpoint", cp.seq, None,
                f"the checkpoint's signature does not verify with key {report.key_fingerprint} (its seq, head "
                "or time was changed, or it was made without the key)"))
        elif cp.seq > last_seq:
            report.problems.append(Problem(
                "removed", last_seq + 1, None,
                f"a signed checkpoint covers seq {cp.seq} but the chain ends at seq {last_seq}: events were "
                "removed from the end"))
        elif cp.seq not in recomputed:
            report.problems.append(Problem("removed", cp.seq, None,
                                           f"the signed checkpoint at seq {cp.seq} names an event that is no "
                                           "longer in the chain"))
        elif recomputed[cp.seq] != cp.head:
            if any(p.seq is not None and previous_seq < p.seq <= cp.seq for p in report.problems):
                previous_seq = cp.seq  # a consequence of a problem already named in its range
                continue
            first = next((lk for lk in links if lk.seq > previous_seq), None)
            report.problems.append(Problem(
                "modified", first.seq if first else cp.seq, first.event_id if first else None,
                f"the chain up to seq {cp.seq} differs from the signed checkpoint: an event in seqs "
                f"{previous_seq + 1}-{cp.seq} was changed, removed or inserted and the chain recomputed "
                "to hide it (compare with the hub's copy or an exported proof to find which)"))
        else:
            report.last_checkpoint_seq = cp.seq
        previous_seq = cp.seq


# ----------------------------------------------------------------- local ledger
def local_links(conn) -> list[Link]:
    """Every link of a local ledger (stored events with their bodies, removed ones
    without), by seq."""
    rows = conn.execute(
        "SELECT seq, event_id, body_sha256, chain, body, 0 FROM events UNION ALL "
        "SELECT seq, event_id, body_sha256, chain, NULL, 1 FROM chain_removed ORDER BY seq")
    return [Link(r[0], r[1], bytes(r[2]) if r[2] is not None else None, bytes(r[3]) if r[3] is not None else None,
                 bytes(r[4]) if r[4] is not None else None, bool(r[5])) for r in rows]


def trusted_key(ledger_path, public_key: bytes | None = None) -> bytes | None:
    """The public key to check checkpoints with: ``public_key`` when given, else the
    ledger's own key file's (``ledger.keys``) if it exists, else None."""
    if public_key is not None:
        return public_key
    if keys.key_path(ledger_path).exists():
        return keys.public_raw(keys.signing_key(ledger_path))
    return None


def verify_ledger(ledger, *, public_key: bytes | None = None) -> VerifyReport:
    """Verify the local ledger ``ledger`` (a ``Ledger``): its chain from genesis, the
    AUTOINCREMENT counter, its checkpoints with ``public_key`` (default: the ledger's
    key file). Reads in one transaction (a consistent snapshot)."""
    from ledger import checkpoints as cps

    conn = ledger._connect()
    try:
        conn.execute("BEGIN")
        links = local_links(conn)
        counter_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        stored = cps.stored(conn, ledger.ledger_id)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return check_chain(links, ledger.ledger_id, stored, public_key=trusted_key(ledger.path, public_key),
                       source="local", counter=counter_row[0] if counter_row else None)


# ----------------------------------------------------------------- proofs
def export_proof(ledger, path: str | os.PathLike) -> dict:
    """Write a proof of the local ledger's chain to ``path`` (JSON): every link's seq,
    event id, body digest and chain value, every signed checkpoint (a fresh one is
    signed first, so the proof ends on a signed head) and the public key. A third party
    checks it with ``verify_proof`` and the public key alone. Refuses (``ChainBroken``)
    a ledger that does not verify itself. Returns a summary dict."""
    from ledger import checkpoints as cps
    from ledger.errors import ChainBroken

    report = verify_ledger(ledger)
    if not report.ok:
        raise ChainBroken(f"the ledger does not verify ({report.first}); a proof of it would prove nothing: "
                          "run `ledger verify` to see what is wrong")
    ledger.checkpoint()
    conn = ledger._connect()
    try:
        links = local_links(conn)
        stored = cps.stored(conn, ledger.ledger_id)
    finally:
        conn.close()
    public = keys.public_raw(keys.signing_key(ledger.path))
    data = {
        "format": PROOF_FORMAT, "version": PROOF_VERSION, "ledger_id": ledger.ledger_id,
        "public_key": public.hex(), "key_fingerprint": keys.fingerprint(public),
        "links": [[lk.seq, lk.event_id, lk.digest.hex(), lk.chain.hex(), lk.removed] for lk in links],
        "checkpoints": [cp.to_dict() for cp in stored],
    }
    tmp = Path(str(path) + ".partial")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)
    return {"path": str(path), "links": len(links), "checkpoints": len(stored),
            "head_seq": links[-1].seq if links else 0, "key_fingerprint": keys.fingerprint(public)}


def verify_proof(path: str | os.PathLike, public_key: bytes) -> VerifyReport:
    """Check a proof written by ``export_proof`` with ``public_key`` alone (raw
    Ed25519): the chain recomputed from the genesis over the listed digests, every
    checkpoint's signature, and that the last link is covered by a signed checkpoint.
    Raises ``ChainBroken`` when the file is not a readable proof."""
    from ledger.errors import ChainBroken

    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != PROOF_FORMAT or data.get("version") != PROOF_VERSION:
            raise ValueError(f"not a {PROOF_FORMAT} v{PROOF_VERSION} file")
        links = [Link(int(s), str(e), bytes.fromhex(d), bytes.fromhex(c), None, bool(r))
                 for s, e, d, c, r in data["links"]]
        stored = [Checkpoint.from_dict(c) for c in data["checkpoints"]]
        ledger_id = str(data["ledger_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChainBroken(f"{path} is not a readable proof: {exc}") from exc
    return check_chain(sorted(links, key=lambda lk: lk.seq), ledger_id, stored, public_key=public_key,
                       source=f"proof {path}", require_signed_head=True)
