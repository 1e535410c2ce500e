"""The SQL the table declarations imply: the read structure, the DDL, and each table's SELECT.

A source file is read once into a temporary ``stage`` table: one row per line, ``r`` the line
as a typed struct (``json_transform`` with the structure every table of the dataset declares,
so a field the declarations do not name is skipped and a value of an unexpected type becomes
NULL: neither breaks a build) and, for roots that keep one, ``extra``: the line's top-level
fields no column or child table holds, as JSON (NULL when there are none). Each table's
SELECT then unnests its level from ``stage``, carrying the parent's key down and numbering
array positions from 0.
"""

from __future__ import annotations

import hashlib

import orjson

from exporter.tables.specs import ALL, Column, Table, tables_of

WINDOW_COLUMN = "source_window"  # windowed tables: the manifest window (file) a row came from
SNAPSHOT_COLUMN = "snapshot_date"  # snapshot tables: the day the snapshot was taken
MAX_OBJECT_BYTES = 16 * 1024 * 1024  # one line at most; the reader buffers twice this per thread


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _structure_type(duck_type: str) -> object:
    """A column type in ``json_transform``'s structure notation (lists as one-element arrays)."""
    if duck_type.endswith("[]"):
        return [_structure_type(duck_type[:-2])]
    return duck_type


def _level_structure(table: Table) -> dict[str, object]:
    structure: dict[str, object] = {}
    for column in table.columns:
        node = structure
        *outer, last = column.path
        for part in outer:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[last] = _structure_type(column.type)
    for child in _children(table):
        assert child.field is not None
        if child.container == "map":
            value_type = next(c.type for c in child.columns if c.field == "value")
            structure[child.field] = f"MAP(VARCHAR, {value_type})"
        else:
            structure[child.field] = [_level_structure(child)]
    return structure


def _children(table: Table) -> list[Table]:
    return [t for t in ALL if t.parent is table]


def root_of(dataset: str) -> Table:
    return next(t for t in tables_of(dataset) if t.parent is None)


def read_structure(dataset: str) -> str:
    """The ``json_transform`` structure of one line of ``dataset``."""
    return orjson.dumps(_level_structure(root_of(dataset))).decode()


def remainder_patch(root: Table) -> str:
    """A JSON merge patch deleting every top-level field the root's columns or children hold
    whole (a column inside an object, such as ``division.id``, leaves the object in place)."""
    held = [c.field for c in root.columns if len(c.path) == 1]
    held += [child.field for child in _children(root) if child.field is not None]
    return orjson.dumps(dict.fromkeys(held)).decode()


def stage_sql(dataset: str, path: str, compression: str) -> str:
    """CREATE the temporary ``stage`` table from one source file."""
    root = root_of(dataset)
    columns = f"json_transform(json, {literal(read_structure(dataset))}) AS r"
    if root.extra:
        patched = f"json_merge_patch(json, {literal(remainder_patch(root))})::VARCHAR"
        columns += f", nullif({patched}, '{{}}')::JSON AS extra"
    source = (
        f"read_ndjson_objects({literal(path)}, compression={literal(compression)}, "
        f"maximum_object_size={MAX_OBJECT_BYTES})"
    )
    return f"CREATE OR REPLACE TEMP TABLE stage AS SELECT {columns} FROM {source}"


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
        types.append(("extra", "JSON"))
    types.append(system_column(table))
    return types


def ddl(table: Table) -> str:
    columns = ", ".join(f"{ident(name)} {kind}" for name, kind in column_types(table))
    return f"CREATE TABLE IF NOT EXISTS {ident(table.name)} ({columns})"


def _value(table: Table, column: Column) -> str:
    depth = table.depth
    if column.name == table.index:
        return f"i{depth}"
    return f"o{depth}." + ".".join(ident(part) for part in column.path)


def _relation(table: Table, *, with_extra: bool = False) -> str:
    """A query giving the parent's key columns by name, ``o<depth>`` (this level's object),
    ``i<depth>`` (its position) and, for a root that keeps one, ``extra``."""
    if table.parent is None:
        return "SELECT r AS o0" + (", extra" if table.extra and with_extra else "") + " FROM stage"
    parent, depth = table.parent, table.depth
    own = {c.name: c for c in parent.own_columns}
    carry = [name if name in parent.inherited else f"{_value(parent, own[name])} AS {ident(name)}"
             for name in parent.key]  # fmt: skip
    assert table.field is not None
    source = f"o{depth - 1}.{ident(table.field)}"
    if table.container == "map":
        source = f"map_entries({source})"
    items = [*carry, f"unnest({source}) AS o{depth}"]
    if table.index is not None:
        items.append(f"generate_subscripts({source}, 1) - 1 AS i{depth}")
    return f"SELECT {', '.join(items)} FROM ({_relation(parent)})"


def insert_sql(table: Table, tag: str) -> str:
    """INSERT the table's rows from ``stage``; ``tag`` fills the system column (the window
    name, or the snapshot's day)."""
    names = [name for name, _ in column_types(table)]
    values = [ident(name) for name in table.inherited]
    values += [f"{_value(table, c)} AS {ident(c.name)}" for c in table.own_columns]
    if table.extra:
        values.append("extra")
    kind = system_column(table)[1]
    values.append(f"{literal(tag)}::{kind}")
    columns = ", ".join(ident(name) for name in names)
    return (
        f"INSERT INTO {ident(table.name)} ({columns}) SELECT {', '.join(values)} "
        f"FROM ({_relation(table, with_extra=True)})"
    )


def fingerprint() -> str:
    """Changes whenever a declaration does: a database built by other declarations is rebuilt."""
    text = "\n".join(ddl(t) + read_structure(t.dataset) for t in ALL)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
