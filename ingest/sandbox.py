"""The SQL sandbox of ``ledger sql`` and ``ledger audit``: what a tenant's query may reach.

A query may read the analytics events of ITS tenant and nothing else: no file, URL, other
server, dictionary, executable, other table or other tenant's row; it may not write,
change a setting or lift a limit. Three layers, each enough on its own for what it covers
(docs/analytics.md has the table of which layer stops which attempt):

1. **The engine** (the boundary). Embedded chdb: the reader session runs in a ClickHouse
   engine started with a generated users file (``reader_config``) whose only user has
   ``GRANT SELECT ON analytics.swarm_events`` (+ ``analytics.schema_migrations``) and no
   other grant — so no ``READ ON FILE/URL/S3/...`` source privilege and no
   ``CREATE TEMPORARY TABLE`` (which every table function but a few harmless ones needs)
   — a row policy ``tenant_id = '<tenant>'`` on ``swarm_events`` (and the same filter in
   ``additional_table_filters``), a profile with ``readonly = 1`` (no INSERT/DDL/SET/
   SETTINGS) and the limits (``Limits``), and ``remote_url_allow_hosts`` that allows no
   host. A ClickHouse server: a reader user per tenant with the same grants, profile and
   row policy (``ingest.access``, infrastructure/clickhouse/).
2. **ClickHouse's own parser** (``check_query``): the text is normalised by
   ``formatQuerySingleLine`` (one statement only) and its syntax tree read from
   ``EXPLAIN AST`` (parsing only, nothing is resolved, read or requested); every table,
   table function and function it names, at any depth (subqueries, CTEs, EXPLAIN,
   DESCRIBE, IN), is checked against allow-lists; SETTINGS, FORMAT and INTO OUTFILE
   clauses are refused. The NORMALISED text is what then runs, so what was checked is
   what executes.
3. **Strings** (last layer, on the normalised text, outside quoted literals): no
   ``INTO OUTFILE``.

Refusals raise ``SqlRefused`` (``WriteRefused`` for writes) with what was refused and
what to do instead; limits hit raise ``QueryLimitExceeded`` naming the setting.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping
from xml.sax.saxutils import escape as xml_escape

from ingest.errors import SqlRefused, WriteRefused

#: The only table a tenant's query reads (with its tenant's rows only).
EVENTS_TABLE = "swarm_events"
#: Analytics tables the reader may read besides ``swarm_events`` (schema version only).
READER_TABLES = ("swarm_events", "schema_migrations")
#: Other analytics tables: never readable from ``ledger sql`` (checkpoint streams and
#: refused rows name every tenant).
PRIVATE_TABLES = frozenset({"ingest_checkpoints", "ingest_refused"})
#: System tables that reveal nothing about data, files, servers or other sessions.
ALLOWED_SYSTEM_TABLES = frozenset({
    "one", "numbers", "numbers_mt", "functions", "table_functions", "data_type_families",
    "time_zones", "formats", "settings", "aggregate_function_combinators", "contributors",
})
#: Table functions that generate data in the engine and reach nothing outside it
#: (``numbers(1e12)`` is still bounded by the limits).
ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "values", "generate_series", "generateseries"})
#: Functions refused anywhere in a query: they read files, dictionaries, other tables by
#: name, or the host's and server's configuration (compared in lower case).
DENIED_FUNCTIONS = frozenset({
    "file", "joinget", "joingetornull", "hascolumnintable", "getmacro", "getserversetting",
    "getmergetreesetting", "catboostevaluate", "modelevaluate", "evalmlmethod",
    "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "filesystemfree",
    "addresstoline", "addresstolinewithinlines", "addresstosymbol", "demangle", "trap",
    "showcertificate", "getclienthttpheader", "hostname", "fqdn", "serveruuid",
    "getoskernelversion",
})
#: Prefixes of refused function names (every dictionary function).
DENIED_FUNCTION_PREFIXES = ("dictget", "dicthas", "dictisin")
#: Statement kinds (root of ClickHouse's syntax tree) a tenant may run.
_QUERY_ROOTS = {"SelectWithUnionQuery", "DescribeQuery", "Explain", "ShowTables", "ShowCreateTableQuery",
                "ExistsTableQuery", "ExistsDatabaseQuery"}
#: SHOW statements behind the ``ShowTables`` node that are allowed (normalised text).
_SHOW_ALLOWED = ("SHOW TABLES", "SHOW DATABASES")
#: EXPLAIN kinds that are allowed (the inner statement is checked like any other).
_EXPLAIN_ALLOWED = {"EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN QUERY TREE", "EXPLAIN PLAN",
                    "EXPLAIN PIPELINE", "EXPLAIN ESTIMATE"}
#: First words (normalised text) of the statements that may be queries.
_FIRST_WORDS = {"SELECT", "WITH", "(", "DESCRIBE", "DESC", "EXPLAIN", "SHOW", "EXISTS"}
#: ``IN`` functions whose right side may name a table.
_IN_FUNCTIONS = {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin",
                 "globalnotnullin"}

_WHAT_TO_DO = ("`ledger sql` reads your tenant's rows of swarm_events (and numbers(), values(), "
               "system.one/numbers/functions/settings); export with --format csv|json > FILE")


# ---------------------------------------------------------------------- limits
#: The smallest ``max_result_rows`` given to the engine: clickhouse-connect's handshake
#: reads ~2,000 rows of system.settings in the same session. Smaller limits are enforced
#: exactly while the rows are streamed.
ENGINE_MIN_RESULT_ROWS = 10_000

@dataclass(frozen=True)
class Limits:
    """Resource limits of every sandboxed query (ClickHouse settings of the same names).

    Configuration: ``sql_max_execution_time`` (s), ``sql_max_memory_usage`` (bytes),
    ``sql_max_result_rows`` in ``ledger.toml`` or ``LEDGER_SQL_MAX_*``. A query over a
    limit fails with ``QueryLimitExceeded`` (``result_overflow_mode = 'throw'``: a result
    is never silently cut short)."""

    max_execution_time: float = 30.0
    max_memory_usage: int = 2_000_000_000
    max_result_rows: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        """The limits of a ``ledger.config.Settings``."""
        return cls(float(settings.sql_max_execution_time), int(settings.sql_max_memory_usage),
                   int(settings.sql_max_result_rows))

    @property
    def engine_result_rows(self) -> int:
        """``max_result_rows`` as the engine enforces it (the stream enforces the exact limit)."""
        return max(int(self.max_result_rows), ENGINE_MIN_RESULT_ROWS)

    def as_settings(self) -> dict[str, Any]:
        """The ClickHouse settings enforcing these limits."""
        return {"max_execution_time": _number(self.max_execution_time), "timeout_overflow_mode": "throw",
                "max_memory_usage": int(self.max_memory_usage), "max_result_rows": int(self.max_result_rows),
                "result_overflow_mode": "throw"}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


#: ClickHouse error code -> (what, configuration setting that raises it).
LIMIT_ERRORS = {
    159: ("took longer than the time limit", "sql_max_execution_time"),
    160: ("was too slow for the time limit", "sql_max_execution_time"),
    241: ("needed more memory than allowed", "sql_max_memory_usage"),
    396: ("returned more rows than allowed", "sql_max_result_rows"),
    158: ("returned more rows than allowed", "sql_max_result_rows"),
}


# ---------------------------------------------------------------------- quoting
def sql_string(text: str) -> str:
    """A ClickHouse string literal of ``text`` (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tenant_condition(tenant: str) -> str:
    """The row condition of a tenant: ``tenant_id = '<tenant>'``."""
    if not isinstance(tenant, str) or not tenant:
        raise SqlRefused("no tenant: every `ledger sql` query runs for one tenant (--tenant)")
    return f"tenant_id = {sql_string(tenant)}"


def table_filters(tenant: str, database: str) -> str:
    """The ``additional_table_filters`` value restricting ``swarm_events`` to a tenant."""
    return "{" + f"{sql_string(f'{database}.{EVENTS_TABLE}')}: {sql_string(tenant_condition(tenant))}" + "}"


# ---------------------------------------------------------------------- embedded reader engine
def reader_config(directory: Path, tenant: str, limits: Limits, database: str) -> Path:
    """Write the configuration of an embedded (chdb) reader engine for ``tenant`` into
    ``directory``; returns the ``config-file`` path to start chdb with.

    The engine's only user (chdb runs every query as ``default``) gets: the grants
    ``SELECT ON <database>.swarm_events`` and ``<database>.schema_migrations`` and nothing
    else; a row policy (``<databases>`` filter) and ``additional_table_filters`` with
    ``tenant_id = '<tenant>'``; a profile with ``readonly = 1`` and the limits
    (``max_result_rows`` at least ``ENGINE_MIN_RESULT_ROWS``: clickhouse-connect's handshake
    reads ~2,000 rows of system.settings; a smaller limit is enforced exactly by
    ``ingest.client.Analytics.stream``). ``remote_url_allow_hosts`` allows no host and
    ``user_files_path`` is this empty directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    condition = xml_escape(tenant_condition(tenant))
    grants = "".join(f"<query>GRANT SELECT ON {database}.{t}</query>" for t in READER_TABLES)
    profile = limits.as_settings()
    profile.update(max_result_rows=limits.engine_result_rows, readonly=1, allow_ddl=0, allow_introspection_functions=0,
                   additional_table_filters=table_filters(tenant, database))
    settings_xml = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in profile.items())
    users = directory / "users.xml"
    users.write_text(
        "<clickhouse><profiles><default>" + settings_xml + "</default></profiles><quotas><default/></quotas><users><default><password></password>"
        "<networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>"
        f"<grants>{grants}</grants>"
        f"<databases><{database}><{EVENTS_TABLE}><filter>{condition}</filter></{EVENTS_TABLE}></{database}></databases>"
        "</default></users></clickhouse>\n")
    config = directory / "config.xml"
    files = directory / "user_files"
    files.mkdir(exist_ok=True)
    config.write_text(
        "<clickhouse>"
        f"<user_directories><users_xml><path>{xml_escape(str(users))}</path></users_xml></user_directories>"
        "<remote_url_allow_hosts><host>no-host.invalid</host></remote_url_allow_hosts>"
        f"<user_files_path>{xml_escape(str(files))}/</user_files_path>"
        "</clickhouse>\n")
    return config


def reader_directory() -> Path:
    """A private (0700) temporary directory for a reader engine's configuration."""
    return Path(tempfile.mkdtemp(prefix="ledger-sql-"))


# ---------------------------------------------------------------------- the parser layer
@dataclass
class Node:
    """One node of ClickHouse's ``EXPLAIN AST`` tree: ``kind`` (e.g. ``Function``),
    ``name`` (e.g. ``file``; aliases removed) and children."""

    kind: str
    name: str
    children: list["Node"]

    def walk(self, parent: "Node | None" = None) -> Iterator[tuple["Node", "Node | None"]]:
        yield self, parent
        for child in self.children:
            yield from child.walk(self)


_CHILDREN = re.compile(r" \(children \d+\)$")
_ALIAS = re.compile(r" \(alias .*\)$")


def parse_ast(text: str) -> Node:
    """The tree of ``EXPLAIN AST`` output (one node a line, one space of indent a level)."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        label = _CHILDREN.sub("", line.strip())
        kind, _, name = label.partition(" ")
        if kind in ("Function", "TableIdentifier"):
            name = _ALIAS.sub("", name)
        node = Node(kind, name.strip(), [])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise SqlRefused("`ledger sql` could not read ClickHouse's parse of the query; the query is refused")
        stack.append((depth, node))
    if root is None:
        raise SqlRefused("empty query: give one SELECT")
    return root


_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_$]*|\S", re.S)


def tokens(text: str) -> list[str]:
    """Tokens of normalised SQL: quoted strings and identifiers whole, words, symbols."""
    return _TOKEN.findall(text)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] in "`\"" and token[-1] == token[0]:
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def cte_names(normalized: str) -> set[str]:
    """Names of the table CTEs (``WITH name AS (SELECT ...)``) of a normalised query."""
    toks = tokens(normalized)
    names = set()
    for i in range(len(toks) - 3):
        if (toks[i].upper() in ("WITH", ",") and toks[i + 2].upper() == "AS" and toks[i + 3] == "("
                and toks[i + 1][0] not in "'(" and i + 4 < len(toks) and toks[i + 4].upper() in ("SELECT", "WITH", "(")):
            names.add(_unquote(toks[i + 1]))
    return names


def _refuse_function(name: str) -> None:
    low = name.lower()
    if low in DENIED_FUNCTIONS or low.startswith(DENIED_FUNCTION_PREFIXES):
        what = "reads dictionaries" if low.startswith(DENIED_FUNCTION_PREFIXES) else \
            "reads files, other tables or the host's configuration"
        raise SqlRefused(f"function {name}() is refused: it {what}; {_WHAT_TO_DO}")


def _check_table(name: str, ctes: set[str], database: str) -> None:
    db, dot, table = name.rpartition(".")
    if not dot:
        if table == EVENTS_TABLE or (table in ctes and table not in PRIVATE_TABLES and table not in READER_TABLES):
            return
    elif db == database and table == EVENTS_TABLE:
        return
    elif db == "system" and table in ALLOWED_SYSTEM_TABLES:
        return
    raise SqlRefused(f"table {name} is refused: {_WHAT_TO_DO}")


def check_tree(root: Node, normalized: str, database: str) -> None:
    """Refuse anything in the syntax tree outside the allow-lists (see module doc)."""
    if root.kind not in _QUERY_ROOTS:
        raise WriteRefused(
            f"`ledger sql` is read-only: a {normalized.split(None, 1)[0].upper() if normalized else 'empty'} "
            "statement is refused; use SELECT, WITH, DESCRIBE, EXPLAIN, SHOW TABLES or EXISTS "
            "(data is loaded by `ledger ingest`)")
    upper = normalized.upper()
    if root.kind == "ShowTables" and not upper.startswith(_SHOW_ALLOWED):
        raise SqlRefused(f"{' '.join(normalized.split()[:2])} is refused; SHOW TABLES and SHOW DATABASES are allowed")
    ctes = cte_names(normalized)
    for node, parent in root.walk():
        if node.kind == "Explain":
            if node.name.upper() not in _EXPLAIN_ALLOWED:
                raise SqlRefused(f"{node.name} is refused; EXPLAIN [AST|SYNTAX|QUERY TREE|PLAN|PIPELINE|ESTIMATE] SELECT ... is allowed")
            if not node.children or node.children[-1].kind not in ("SelectWithUnionQuery", "Explain"):
                raise SqlRefused("EXPLAIN explains a SELECT only in `ledger sql`")
        elif node.kind == "Set" and not (parent is not None and parent.kind == "Explain"):
            raise SqlRefused("SETTINGS in a query are refused: `ledger sql` runs with fixed limits "
                             "(configure sql_max_execution_time, sql_max_memory_usage, sql_max_result_rows)")
        elif node.kind == "SelectWithUnionQuery" and len(node.children) > 1:
            extra = node.children[1]
            if extra.kind == "Literal":
                raise WriteRefused("`ledger sql` is read-only and does not write files: drop INTO OUTFILE "
                                   "and use --format csv > FILE")
            raise SqlRefused("a FORMAT clause is refused: use --format table|vertical|csv|json|jsonl")
        elif node.kind == "Function":
            if parent is not None and parent.kind in ("TableExpression", "Explain"):
                if node.name.lower() not in ALLOWED_TABLE_FUNCTIONS:
                    raise SqlRefused(f"table function {node.name}() is refused: it reaches outside the analytics "
                                     f"tables; {_WHAT_TO_DO}")
            else:
                _refuse_function(node.name)
                if node.name.lower() in _IN_FUNCTIONS and node.children and len(node.children[0].children) == 2:
                    right = node.children[0].children[1]
                    if right.kind in ("Identifier", "TableIdentifier"):
                        _check_table(right.name, ctes, database)
        elif node.kind == "TableIdentifier":
            _check_table(node.name, ctes, database)
        elif node.kind == "Identifier" and parent is not None and parent.kind in (
                "ShowCreateTableQuery", "ExistsTableQuery"):
            _check_table(node.name, ctes, database)
    # last layer, strings: outside quoted literals and identifiers, no INTO OUTFILE
    words = [t.upper() for t in tokens(normalized) if t[0] not in "'`\""]
    if any(a == "INTO" and b == "OUTFILE" for a, b in zip(words, words[1:])):
        raise WriteRefused("`ledger sql` is read-only and does not write files: drop INTO OUTFILE")


def check_query(ch, sql: str, parameters: Mapping[str, Any] | None = None) -> str:
    """Check ``sql`` with ClickHouse's parser on the open handle ``ch``; returns the
    normalised single-line statement to run. Raises ``SqlRefused``/``WriteRefused``, or
    ``QueryError`` for a syntax error."""
    from ingest.client import DATABASE
    from ingest.errors import QueryError

    if not sql.strip():
        raise SqlRefused("empty query: give one SELECT")
    try:
        normalized = ch.query("SELECT formatQuerySingleLine({q:String})", {"q": sql},
                              what="parse the query").result_rows[0][0]
    except QueryError as exc:
        if "Multi-statements are not allowed" in str(exc):
            raise WriteRefused(
                "`ledger sql` runs ONE read-only statement; several statements separated by ';' are refused"
            ) from exc
        raise
    toks = tokens(normalized)
    first = toks[0].upper() if toks else ""
    if first not in _FIRST_WORDS:
        raise WriteRefused(
            f"`ledger sql` is read-only: a {first or 'empty'} statement is refused; use SELECT, WITH, "
            "DESCRIBE, EXPLAIN, SHOW TABLES or EXISTS (data is loaded by `ledger ingest`)")
    if len(toks) >= 2 and toks[-2].upper() == "FORMAT":
        raise SqlRefused("a FORMAT clause is refused: use --format table|vertical|csv|json|jsonl")
    try:
        # a command: the client adds no FORMAT clause of its own to the text (a query would)
        text = ch.command(f"EXPLAIN AST {normalized}", parameters, what="parse the query")
    except QueryError as exc:
        if "readonly mode" in str(exc) or "should not be changed" in str(exc):
            raise SqlRefused("SETTINGS in a query are refused: `ledger sql` runs with fixed limits") from exc
        raise
    if not isinstance(text, str):
        text = "\n".join(str(t) for t in text) if isinstance(text, (list, tuple)) else str(text)
    check_tree(parse_ast(text), normalized, DATABASE)
    return normalized
