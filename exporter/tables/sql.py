"""The SQL the table declarations imply: the read, the DDL, and each table's INSERT.

A source file is read once into a temporary ``stage`` table, one row per line, one column per
top-level field the dataset's tables declare (nested levels as typed structs). Each table's
INSERT then unnests its level from ``stage``, carrying the parent's key down and numbering
array positions from 0. Two reads fill ``stage``:

- typed (windowed datasets, the fast path): ``read_json`` with explicit columns, so a field
  no declaration names is skipped. A census of the file's top-level keys first finds the ones
  nothing declares; they are read too, as JSON, and the root's ``extra`` holds them;
- lenient (snapshots, and a windowed file the typed read refuses because a field changed its
  type): ``json_transform``, where a value of an unexpected type becomes NULL, and ``extra``
  is the line minus every field a column or child holds whole (a JSON merge patch).

Either way a field the API adds never breaks a build, and at the top level it is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

from exporter.tables.specs import ALL, Column, Table, tables_of

WINDOW_COLUMN = "source_window"  # windowed tables: the manifest window (file) a row came from
SNAPSHOT_COLUMN = "snapshot_date"  # snapshot tables: the day the snapshot was taken
EXTRA_COLUMN = "extra"
MAX_OBJECT_BYTES = 16 * 1024 * 1024  # one line at most; the reader buffers twice this per thread


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def children(table: Table) -> list[Table]:
    return [t for t in ALL if t.parent is table]


def root_of(dataset: str) -> Table:
    return next(t for t in tables_of(dataset) if t.parent is None)


# -- the shape of a line: json_transform's structure, and the same as DuckDB types


def _tree(table: Table) -> dict[str, object]:
    """The fields the table and its descendants read, nested as in a line: leaves are DuckDB
    types, a child list is a one-element list, a child map its MAP type."""
    tree: dict[str, object] = {}
    for column in table.columns:
        node = tree
        *outer, last = column.path
        for part in outer:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[last] = column.read_type
    for child in children(table):
        assert child.field is not None
        node = tree
        *outer, last = child.field.split(".")  # a child's array may sit inside an object
        for part in outer:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        if child.container == "map":
            value_type = next(c.type for c in child.columns if c.field == "value")
            node[last] = f"MAP(VARCHAR, {value_type})"
        else:
            node[last] = [_tree(child)]
    return tree


def _structure(node: object) -> object:
    """A tree node in json_transform's notation (a list type as a one-element array)."""
    if isinstance(node, str):
        return [_structure(node[:-2])] if node.endswith("[]") else node
    if isinstance(node, list):
        return [_structure(node[0])]
    assert isinstance(node, dict)
    return {key: _structure(value) for key, value in node.items()}


def _duck_type(node: object) -> str:
    """A tree node as a DuckDB type."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return _duck_type(node[0]) + "[]"
    assert isinstance(node, dict)
    return "STRUCT(" + ", ".join(f"{ident(k)} {_duck_type(v)}" for k, v in node.items()) + ")"


def held_fields(root: Table) -> list[str]:
    """The top-level fields a root's columns or children hold whole."""
    held = [c.field for c in root.columns if len(c.path) == 1]
    return held + [child.field for child in children(root) if child.field is not None]


def _source(path: str, compression: str) -> str:
    return (
        f"read_ndjson_objects({literal(path)}, compression={literal(compression)}, "
        f"maximum_object_size={MAX_OBJECT_BYTES})"
    )


def census_sql(path: str, compression: str) -> str:
    """The distinct top-level keys of a file's lines."""
    return f"SELECT DISTINCT unnest(json_keys(json)) FROM {_source(path, compression)}"


def typed_stage_sql(dataset: str, path: str, compression: str, unknown: Iterable[str]) -> str:
    """``stage`` by ``read_json`` with explicit columns, ``unknown`` top-level keys as JSON."""
    root = root_of(dataset)
    tree = _tree(root)
    columns = {key: _duck_type(node) for key, node in tree.items()}
    unknown = sorted(unknown)
    columns.update(dict.fromkeys(unknown, "JSON"))
    spec = "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in columns.items()) + "}"
    select = ", ".join(ident(key) for key in tree)
    if root.extra:
        pairs = ", ".join(f"{literal(key)}, {ident(key)}" for key in unknown)
        select += (
            f", nullif(json_merge_patch('{{}}', json_object({pairs}))::VARCHAR, '{{}}')::JSON"
            if unknown
            else ", NULL::JSON"
        ) + f" AS {EXTRA_COLUMN}"
    source = (
        f"read_json({literal(path)}, format='newline_delimited', "
        f"compression={literal(compression)}, maximum_object_size={MAX_OBJECT_BYTES}, "
        f"columns={spec})"
    )
    return f"CREATE OR REPLACE TABLE scratch.stage AS SELECT {select} FROM {source}"


def lenient_stage_sql(dataset: str, path: str, compression: str) -> str:
    """``stage`` by ``json_transform``: a value that does not fit its type becomes NULL."""
    root = root_of(dataset)
    structure = orjson.dumps(_structure(_tree(root))).decode()
    select = f"unnest(json_transform(json, {literal(structure)}))"
    if root.extra:
        patch = orjson.dumps(dict.fromkeys(held_fields(root))).decode()
        patched = f"json_merge_patch(json, {literal(patch)})::VARCHAR"
        select += f", nullif({patched}, '{{}}')::JSON AS {EXTRA_COLUMN}"
    source = _source(path, compression)
    return f"CREATE OR REPLACE TABLE scratch.stage AS SELECT {select} FROM {source}"


# -- tables


def system_column(table: Table) -> tuple[str, str]:
    return (SNAPSHOT_COLUMN, "DATE") if table.snapshot else (WINDOW_COLUMN, "VARCHAR")


def column_types(table: Table) -> list[tuple[str, str]]:
    """Every column of the table, in order: the parent's key, its own, ``extra``, the system
    column."""
    types: list[tuple[str, str]] = []
    if table.parent is not None:
        parent = dict(column_types(table.parent))
        types += [(name, parent[name]) for name in table.inherited]
    types += [(c.name, c.type) for c in table.own_columns]
    if table.extra:
        types.append((EXTRA_COLUMN, "JSON"))
    types.append(system_column(table))
    return types


def ddl(table: Table) -> str:
    columns = ", ".join(f"{ident(name)} {kind}" for name, kind in column_types(table))
    return f"CREATE TABLE IF NOT EXISTS {ident(table.name)} ({columns})"


def _value(table: Table, column: Column) -> str:
    depth = table.depth
    if column.name == table.index:
        return f"i{depth}"
    value = f"o{depth}." + ".".join(ident(part) for part in column.path)
    return column.derive.format(value) if column.derive else value


def _relation(table: Table) -> str:
    """A query giving the parent's key columns by name and ``o<depth>``, this level's object
    (at the root, the alias of ``stage``), with ``i<depth>`` its position."""
    if table.parent is None:
        return "scratch.stage AS o0"
    parent, depth = table.parent, table.depth
    own = {c.name: c for c in parent.own_columns}
    carry = [name if name in parent.inherited else f"{_value(parent, own[name])} AS {ident(name)}"
             for name in parent.key]  # fmt: skip
    assert table.field is not None
    source = f"o{depth - 1}." + ".".join(ident(part) for part in table.field.split("."))
    if table.container == "map":
        source = f"map_entries({source})"
    items = [*carry, f"unnest({source}) AS o{depth}"]
    if table.index is not None:
        items.append(f"generate_subscripts({source}, 1) - 1 AS i{depth}")
    inner = _relation(parent)
    return f"(SELECT {', '.join(items)} FROM {inner})"


def insert_sql(table: Table, tag: str) -> str:
    """INSERT the table's rows from ``stage``; ``tag`` fills the system column (the window
    name, or the snapshot's day)."""
    names = [name for name, _ in column_types(table)]
    values = [ident(name) for name in table.inherited]
    values += [f"{_value(table, c)} AS {ident(c.name)}" for c in table.own_columns]
    if table.extra:
        values.append(f"o0.{EXTRA_COLUMN}")
    kind = system_column(table)[1]
    values.append(f"{literal(tag)}::{kind}")
    columns = ", ".join(ident(name) for name in names)
    return (
        f"INSERT INTO {ident(table.name)} ({columns}) SELECT {', '.join(values)} "
        f"FROM {_relation(table)}"
    )


def delete_sql(table: Table, tag: str | None) -> str:
    """DELETE one window's rows (every row of a snapshot table when ``tag`` is None)."""
    if tag is None:
        return f"DELETE FROM {ident(table.name)}"
    return f"DELETE FROM {ident(table.name)} WHERE {WINDOW_COLUMN} = {literal(tag)}"


def fingerprint() -> str:
    """Changes whenever a declaration does: a database built by other declarations is rebuilt."""
    text = "\n".join(ddl(t) + orjson.dumps(_tree(t)).decode() for t in ALL)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
