"""Line diffs that agree with git: the Myers diff with git's own heuristics.

``ledger blame`` must attribute lines exactly as ``git blame`` does on an imported
history, and ``git blame`` attributes lines through its diff engine (xdiff). A
textbook longest-common-subsequence diff (``difflib``) often pairs lines differently
(which of two equal lines is "kept" is a choice), so this module re-implements the
behaviour of git's default diff, step by step, as documented in git's sources
(``xdiff/xprepare.c``, ``xdiff/xdiffi.c``, ``xdiff-interface.c``, git 2.14+):

1. **common tail trimmed in 1 KiB blocks** (``trim_common_tail``; git does this when a
   diff has no context lines, as blame's diffs have none), cut after a newline;
2. **records**: lines split after each ``\\n`` (the last one may lack it), compared
   byte for byte (the newline included), numbered by equivalence class;
3. **common prefix and suffix lines** set aside;
4. **cleanup**: lines with no equal in the other file are marked changed at once;
   lines with many equals (more than ~sqrt(n), at most 1024) are marked changed when
   they sit in a run of such lines (``xdl_clean_mmatch``); the rest go to the core;
5. **Myers' O(ND) divide and conquer** on what is left, with git's cost limits: past
   a cost of ``max(256, ~sqrt(n))`` it takes the furthest-reaching diagonal, and past
   256 with a snake of 20+ equal lines it may split at an "interesting" diagonal;
6. **compaction**: each group of changed lines is slid as far as it can go, merged
   with groups it touches, aligned with a change in the other file when possible,
   else placed by the **indent heuristic** (git's default since 2.14);
7. **hunks**: maximal runs of changed lines, as ``(start_a, count_a, start_b,
   count_b)`` with 0-based starts (what git hands blame).

Pure Python, no I/O. Tested against ``git diff --no-index -U0`` on random and real
files (``tests/test_blame.py``).
"""

from __future__ import annotations

__all__ = ["Hunk", "diff_hunks", "split_lines"]

#: ``(start_a, count_a, start_b, count_b)``: lines ``start_a .. start_a+count_a`` of the
#: old text replaced by lines ``start_b .. start_b+count_b`` of the new one (0-based).
Hunk = tuple[int, int, int, int]

_TAIL_BLOCK = 1024          # trim_common_tail's block
_MAX_EQ_LIMIT = 1024        # cap of the "too many equals" threshold
_SCAN_WINDOW = 100          # lines looked at around a multi-match line
_DISCARD_RUN = 4            # a run with under 1/4 of kept lines is discarded
_MAX_COST_MIN = 256         # lowest cost limit of the Myers search
_HEUR_MIN_COST = 256        # cost from which a good snake may end the search
_SNAKE = 20                 # length of a "good" snake
_K_HEUR = 4
_MAX_INDENT = 200
_MAX_BLANKS = 20
_MAX_SLIDING = 100
_SPACE = frozenset(b" \t\n\r")  # git's isspace: no \v, no \f


def split_lines(data: bytes) -> list[bytes]:
    """Lines of ``data``, each with its ``\\n`` (the last may have none)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _sqrtish(n: int) -> int:
    """git's ``xdl_bogosqrt``: a power of two close to sqrt(n)."""
    i = 1
    while n > 0:
        i <<= 1
        n >>= 2
    return i


def _trim_common_tail(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    """Drop a common suffix, found in whole 1 KiB blocks, cut just after a newline."""
    trimmed = 0
    smaller = min(len(a), len(b))
    la, lb = len(a), len(b)
    while trimmed + _TAIL_BLOCK <= smaller and \
            a[la - trimmed - _TAIL_BLOCK:la - trimmed] == b[lb - trimmed - _TAIL_BLOCK:lb - trimmed]:
        trimmed += _TAIL_BLOCK
    recovered = 0
    start = la - trimmed
    while recovered < trimmed:
        recovered += 1
        if a[start + recovered - 1] == 0x0A:
            break
    cut = trimmed - recovered
    return (a[:la - cut], b[:lb - cut]) if cut else (a, b)


def _kept_lines(cls: list[int], other_count: dict[int, int], start: int, end: int,
                changed: list[bool]) -> list[int]:
    """Step 4 for one file: indices (``start..end``) given to the Myers core; the others
    are marked in ``changed`` (offset by 1 for the sentinel)."""
    limit = min(_sqrtish(len(cls)), _MAX_EQ_LIMIT)
    dis = {}
    for i in range(start, end + 1):
        nm = min(other_count.get(cls[i], 0), limit)
        dis[i] = 0 if nm == 0 else (2 if nm >= limit else 1)
    kept = []
    for i in range(start, end + 1):
        if dis[i] == 1 or (dis[i] == 2 and not _discard_multimatch(dis, i, start, end)):
            kept.append(i)
        else:
            changed[i + 1] = True
    return kept


def _discard_multimatch(dis: dict[int, int], i: int, s: int, e: int) -> bool:
    """True when multi-match line ``i`` sits in a run of mostly unmatched lines."""
    s = max(s, i - _SCAN_WINDOW)
    e = min(e, i + _SCAN_WINDOW)
    counts = []
    for step in (-1, 1):
        unmatched, multi = 0, 1
        j = i + step
        while s <= j <= e:
            if dis[j] == 0:
                unmatched += 1
            elif dis[j] == 2:
                multi += 1
            else:
                break
            j += step
        if unmatched == 0:
            return False
        counts.append((unmatched, multi))
    unmatched = counts[0][0] + counts[1][0]
    multi = counts[0][1] + counts[1][1]
    return multi * _DISCARD_RUN < multi + unmatched


def _split(h1: list[int], off1: int, lim1: int, h2: list[int], off2: int, lim2: int,
           kvdf: list[int], kvdb: list[int], base: int, need_min: bool, mxcost: int):
    """One Myers middle-snake search on the box; returns ``(i1, i2, min_lo, min_hi)``."""
    dmin, dmax = off1 - lim2, lim1 - off2
    fmid, bmid = off1 - off2, lim1 - lim2
    odd = (fmid - bmid) & 1
    fmin = fmax = fmid
    bmin = bmax = bmid
    kvdf[base + fmid] = off1
    kvdb[base + bmid] = lim1
    big = 1 << 62
    ec = 0
    while True:
        ec += 1
        got_snake = False
        if fmin > dmin:
            fmin -= 1
            kvdf[base + fmin - 1] = -1
        else:
            fmin += 1
        if fmax < dmax:
            fmax += 1
            kvdf[base + fmax + 1] = -1
        else:
            fmax -= 1
        for d in range(fmax, fmin - 1, -2):
            lo, hi = kvdf[base + d - 1], kvdf[base + d + 1]
            i1 = lo + 1 if lo >= hi else hi
            prev1 = i1
            i2 = i1 - d
            while i1 < lim1 and i2 < lim2 and h1[i1] == h2[i2]:
                i1 += 1
                i2 += 1
            if i1 - prev1 > _SNAKE:
                got_snake = True
            kvdf[base + d] = i1
            if odd and bmin <= d <= bmax and kvdb[base + d] <= i1:
                return i1, i2, True, True
        if bmin > dmin:
            bmin -= 1
            kvdb[base + bmin - 1] = big
        else:
            bmin += 1
        if bmax < dmax:
            bmax += 1
            kvdb[base + bmax + 1] = big
        else:
            bmax -= 1
        for d in range(bmax, bmin - 1, -2):
            lo, hi = kvdb[base + d - 1], kvdb[base + d + 1]
            i1 = lo if lo < hi else hi - 1
            prev1 = i1
            i2 = i1 - d
            while i1 > off1 and i2 > off2 and h1[i1 - 1] == h2[i2 - 1]:
                i1 -= 1
                i2 -= 1
            if prev1 - i1 > _SNAKE:
                got_snake = True
            kvdb[base + d] = i1
            if not odd and fmin <= d <= fmax and i1 <= kvdf[base + d]:
                return i1, i2, True, True
        if need_min:
            continue
        if got_snake and ec > _HEUR_MIN_COST:
            found = _interesting(h1, off1, lim1, h2, off2, lim2, kvdf, kvdb, base,
                                 fmin, fmax, fmid, bmin, bmax, bmid, ec)
            if found is not None:
                return found
        if ec >= mxcost:
            return _furthest(off1, lim1, off2, lim2, kvdf, kvdb, base, fmin, fmax, bmin, bmax)


def _interesting(h1, off1, lim1, h2, off2, lim2, kvdf, kvdb, base,
                 fmin, fmax, fmid, bmin, bmax, bmid, ec):
    """git's snake heuristic: a diagonal far along, ending a snake of ``_SNAKE`` lines."""
    best, found = 0, None
    for d in range(fmax, fmin - 1, -2):
        dd = abs(d - fmid)
        i1 = kvdf[base + d]
        i2 = i1 - d
        v = (i1 - off1) + (i2 - off2) - dd
        if v > _K_HEUR * ec and v > best and off1 + _SNAKE <= i1 < lim1 and off2 + _SNAKE <= i2 < lim2:
            k = 1
            while h1[i1 - k] == h2[i2 - k]:
                if k == _SNAKE:
                    best, found = v, (i1, i2, True, False)
                    break
                k += 1
    if found:
        return found
    for d in range(bmax, bmin - 1, -2):
        dd = abs(d - bmid)
        i1 = kvdb[base + d]
        i2 = i1 - d
        v = (lim1 - i1) + (lim2 - i2) - dd
        if v > _K_HEUR * ec and v > best and off1 < i1 <= lim1 - _SNAKE and off2 < i2 <= lim2 - _SNAKE:
            k = 0
            while h1[i1 + k] == h2[i2 + k]:
                if k == _SNAKE - 1:
                    best, found = v, (i1, i2, False, True)
                    break
                k += 1
    return found


def _furthest(off1, lim1, off2, lim2, kvdf, kvdb, base, fmin, fmax, bmin, bmax):
    """The cost limit is reached: split at the furthest-reaching diagonal."""
    fbest = fbest1 = -1
    for d in range(fmax, fmin - 1, -2):
        i1 = min(kvdf[base + d], lim1)
        i2 = i1 - d
        if lim2 < i2:
            i1, i2 = lim2 + d, lim2
        if fbest < i1 + i2:
            fbest, fbest1 = i1 + i2, i1
    bbest = bbest1 = 1 << 62
    for d in range(bmax, bmin - 1, -2):
        i1 = max(off1, kvdb[base + d])
        i2 = i1 - d
        if i2 < off2:
            i1, i2 = off2 + d, off2
        if i1 + i2 < bbest:
            bbest, bbest1 = i1 + i2, i1
    if (lim1 + lim2) - bbest < fbest - (off1 + off2):
        return fbest1, fbest - fbest1, True, False
    return bbest1, bbest - bbest1, False, True


def _compare(h1, rindex1, ch1, h2, rindex2, ch2, need_min: bool) -> None:
    """Myers divide and conquer over the kept lines; marks changed lines."""
    n1, n2 = len(h1), len(h2)
    ndiags = n1 + n2 + 3
    base = n2 + 1
    kvdf = [0] * (2 * ndiags + 2)
    kvdb = [0] * (2 * ndiags + 2)
    mxcost = max(_sqrtish(ndiags), _MAX_COST_MIN)
    boxes = [(0, n1, 0, n2, need_min)]
    while boxes:
        off1, lim1, off2, lim2, minimal = boxes.pop()
        while off1 < lim1 and off2 < lim2 and h1[off1] == h2[off2]:
            off1 += 1
            off2 += 1
        while off1 < lim1 and off2 < lim2 and h1[lim1 - 1] == h2[lim2 - 1]:
            lim1 -= 1
            lim2 -= 1
        if off1 == lim1:
            for i in range(off2, lim2):
                ch2[rindex2[i] + 1] = True
        elif off2 == lim2:
            for i in range(off1, lim1):
                ch1[rindex1[i] + 1] = True
        else:
            i1, i2, min_lo, min_hi = _split(h1, off1, lim1, h2, off2, lim2, kvdf, kvdb, base,
                                            minimal, mxcost)
            boxes.append((i1, lim1, i2, lim2, min_hi))
            boxes.append((off1, i1, off2, i2, min_lo))


# ----------------------------------------------------------------- compaction
def _indent(line: bytes) -> int:
    """Indentation width (tab = to the next multiple of 8), -1 for a blank line."""
    ret = 0
    for c in line:
        if c not in _SPACE:
            return ret
        if c == 0x20:
            ret += 1
        elif c == 0x09:
            ret += 8 - ret % 8
        if ret >= _MAX_INDENT:
            return _MAX_INDENT
    return -1


class _File:
    """One side during compaction: classes, changed flags (index + 1), indents."""

    def __init__(self, recs: list[bytes], cls: list[int], changed: list[bool]):
        self.recs, self.cls, self.changed = recs, cls, changed
        self.n = len(recs)
        self._indents: dict[int, int] = {}

    def indent(self, i: int) -> int:
        value = self._indents.get(i)
        if value is None:
            value = self._indents[i] = _indent(self.recs[i])
        return value

    def is_changed(self, i: int) -> bool:
        return self.changed[i + 1]


def _measure(f: _File, split: int) -> tuple[int, int, int, int, int, int]:
    """(end_of_file, indent, pre_blank, pre_indent, post_blank, post_indent) of a split."""
    if split >= f.n:
        eof, indent = 1, -1
    else:
        eof, indent = 0, f.indent(split)
    pre_blank, pre_indent = _blank_run(f, split - 1, -1)
    post_blank, post_indent = _blank_run(f, split + 1, 1)
    return eof, indent, pre_blank, pre_indent, post_blank, post_indent


def _blank_run(f: _File, i: int, step: int) -> tuple[int, int]:
    """From line ``i`` going ``step``: how many blank lines (at most ``_MAX_BLANKS``, then
    indent 0), and the indent of the first non-blank one (-1 when the file ends first)."""
    blank = 0
    while 0 <= i < f.n:
        indent = f.indent(i)
        if indent != -1:
            return blank, indent
        blank += 1
        if blank == _MAX_BLANKS:
            return blank, 0
        i += step
    return blank, -1


def _score(m: tuple[int, int, int, int, int, int], score: list[int]) -> None:
    """Add a split's badness to ``score`` = [effective_indent, penalty] (git's weights)."""
    eof, indent, pre_blank, pre_indent, post_blank_after, post_indent = m
    if pre_indent == -1 and pre_blank == 0:
        score[1] += 1
    if eof:
        score[1] += 21
    post_blank = 1 + post_blank_after if indent == -1 else 0
    total_blank = pre_blank + post_blank
    score[1] += -30 * total_blank + 6 * post_blank
    if indent == -1:
        indent = post_indent
    any_blanks = total_blank != 0
    score[0] += indent
    if indent == -1 or pre_indent == -1:
        pass
    elif indent > pre_indent:
        score[1] += 10 if any_blanks else -4
    elif indent == pre_indent:
        pass
    elif post_indent != -1 and post_indent > indent:
        score[1] += 17 if any_blanks else 24
    else:
        score[1] += 17 if any_blanks else 23


def _score_cmp(a: list[int], b: list[int]) -> int:
    cmp_indents = (a[0] > b[0]) - (a[0] < b[0])
    return 60 * cmp_indents + (a[1] - b[1])


class _Group:
    """A run of changed lines ``start..end`` (empty when equal), like git's xdlgroup."""

    __slots__ = ("f", "start", "end")

    def __init__(self, f: _File):
        self.f = f
        self.start = self.end = 0
        while f.is_changed(self.end):
            self.end += 1

    def next(self) -> bool:
        if self.end == self.f.n:
            return False
        self.start = self.end + 1
        self.end = self.start
        while self.f.is_changed(self.end):
            self.end += 1
        return True

    def previous(self) -> bool:
        if self.start == 0:
            return False
        self.end = self.start - 1
        self.start = self.end
        while self.f.is_changed(self.start - 1):
            self.start -= 1
        return True

    def slide_down(self) -> bool:
        f = self.f
        if self.end < f.n and f.cls[self.start] == f.cls[self.end]:
            f.changed[self.start + 1] = False
            f.changed[self.end + 1] = True
            self.start += 1
            self.end += 1
            while f.is_changed(self.end):
                self.end += 1
            return True
        return False

    def slide_up(self) -> bool:
        f = self.f
        if self.start > 0 and f.cls[self.start - 1] == f.cls[self.end - 1]:
            self.start -= 1
            self.end -= 1
            f.changed[self.start + 1] = True
            f.changed[self.end + 1] = False
            while f.is_changed(self.start - 1):
                self.start -= 1
            return True
        return False


def _compact(f: _File, other: _File, indent_heuristic: bool) -> None:
    """Slide each group of changed lines of ``f`` to git's preferred place."""
    g, go = _Group(f), _Group(other)
    while True:
        if g.end != g.start:
            while True:
                size = g.end - g.start
                end_matching_other = -1
                while g.slide_up():
                    go.previous()
                earliest_end = g.end
                if go.end > go.start:
                    end_matching_other = g.end
                while g.slide_down():
                    go.next()
                    if go.end > go.start:
                        end_matching_other = g.end
                if size == g.end - g.start:
                    break
            if g.end == earliest_end:
                pass
            elif end_matching_other != -1:
                while go.end == go.start:
                    g.slide_up()
                    go.previous()
            elif indent_heuristic:
                shift = max(earliest_end, g.end - size - 1, g.end - _MAX_SLIDING)
                best_shift, best = -1, None
                while shift <= g.end:
                    score = [0, 0]
                    _score(_measure(f, shift), score)
                    _score(_measure(f, shift - size), score)
                    if best_shift == -1 or _score_cmp(score, best) <= 0:
                        best, best_shift = score, shift
                    shift += 1
                while g.end > best_shift:
                    g.slide_up()
                    go.previous()
        if not g.next():
            break
        go.next()


# ----------------------------------------------------------------- entry point
def diff_hunks(a: bytes, b: bytes, *, indent_heuristic: bool = True) -> list[Hunk]:
    """The hunks git's diff (default algorithm, no context) finds from ``a`` to ``b``."""
    a, b = _trim_common_tail(a, b)
    recs1, recs2 = split_lines(a), split_lines(b)
    classes: dict[bytes, int] = {}
    cls1 = [classes.setdefault(r, len(classes)) for r in recs1]
    cls2 = [classes.setdefault(r, len(classes)) for r in recs2]
    n1, n2 = len(cls1), len(cls2)
    ch1 = [False] * (n1 + 3)  # index i + 1 for line i; sentinels at -1 and n (and n + 1)
    ch2 = [False] * (n2 + 3)
    start = 0
    limit = min(n1, n2)
    while start < limit and cls1[start] == cls2[start]:
        start += 1
    tail = 0
    while tail < limit - start and cls1[n1 - 1 - tail] == cls2[n2 - 1 - tail]:
        tail += 1
    count1: dict[int, int] = {}
    for c in cls1:
        count1[c] = count1.get(c, 0) + 1
    count2: dict[int, int] = {}
    for c in cls2:
        count2[c] = count2.get(c, 0) + 1
    rindex1 = _kept_lines(cls1, count2, start, n1 - tail - 1, ch1)
    rindex2 = _kept_lines(cls2, count1, start, n2 - tail - 1, ch2)
    _compare([cls1[i] for i in rindex1], rindex1, ch1, [cls2[i] for i in rindex2], rindex2, ch2, False)
    f1, f2 = _File(recs1, cls1, ch1), _File(recs2, cls2, ch2)
    _compact(f1, f2, indent_heuristic)
    _compact(f2, f1, indent_heuristic)
    hunks: list[Hunk] = []
    i1, i2 = n1, n2
    while i1 >= 0 or i2 >= 0:
        if (i1 > 0 and ch1[i1]) or (i2 > 0 and ch2[i2]):
            l1, l2 = i1, i2
            while i1 > 0 and ch1[i1]:
                i1 -= 1
            while i2 > 0 and ch2[i2]:
                i2 -= 1
            hunks.append((i1, l1 - i1, i2, l2 - i2))
        i1 -= 1
        i2 -= 1
    hunks.reverse()
    return hunks
