"""Many rows, each with its own values, updated in one statement (a bulk chunk's outcomes).

Django's ``update(field=Case(When(pk=…, then=…), …))`` does this too, but compiling a CASE of a hundred
branches per field costs the bulk worker more CPU than the statement costs PostgreSQL. Here the text is
a few joins: ``UPDATE … FROM (VALUES …)`` on PostgreSQL, ``CASE pk WHEN … THEN …`` on SQLite (whose
VALUES cannot name its columns). Only the model's quoted names go into the text; every value is a
parameter, prepared by its field as the ORM prepares it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection
from django.db.models import Model


def rows_update(
    model: type[Model],
    rows: Mapping[Any, Mapping[str, Any]],
    *,
    same: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    increment: Iterable[str] = (),
) -> list[Any]:
    """Set each row's own values (``rows``: pk → {field: value}, every row the same fields), ``same`` on
    all of them and ``increment`` (fields) by one, only where every ``where`` field equals its value.

    Returns the primary keys of the rows changed.
    """
    if not rows:
        return []
    same, where = dict(same or {}), dict(where or {})
    meta, quote = model._meta, connection.ops.quote_name
    pk = meta.pk
    names = list(next(iter(rows.values())))
    fields = [meta.get_field(name) for name in names]
    column = {name: quote(meta.get_field(name).column) for name in [*names, *same, *where, *increment]}

    def prep(field_name: str, value: Any) -> Any:
        return meta.get_field(field_name).get_db_prep_save(value, connection)

    params: list[Any] = []
    shared = [f"{column[name]} = %s" for name in same] + [f"{column[n]} = {column[n]} + 1" for n in increment]
    shared_params = [prep(name, value) for name, value in same.items()]
    where_sql = "".join(f" AND r.{column[name]} = %s" for name in where)
    where_params = [prep(name, value) for name, value in where.items()]
    table, pk_column = quote(meta.db_table), quote(pk.column)

    if connection.vendor == "postgresql":
        # Each placeholder cast to its column's type: VALUES cannot infer it from the target table.
        casts = [pk.db_type(connection), *[field.db_type(connection) for field in fields]]
        row_sql = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
        for key, values in rows.items():
            params += [pk.get_db_prep_save(key, connection), *[prep(n, values[n]) for n in names]]
        aliases = ", ".join(["id", *[f"v{i}" for i in range(len(names))]])
        sets = [f"{column[name]} = v.v{i}" for i, name in enumerate(names)] + shared
        sql = (
            f"UPDATE {table} AS r SET {', '.join(sets)} "  # noqa: S608 - names from the model, quoted
            f"FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v({aliases}) "
            f"WHERE r.{pk_column} = v.id{where_sql} RETURNING r.{pk_column}"
        )
        params = [*shared_params, *params, *where_params]
    else:  # SQLite: one CASE per field
        keys = [pk.get_db_prep_save(key, connection) for key in rows]
        sets = []
        for name in names:
            sets.append(f"{column[name]} = CASE {pk_column}" + " WHEN %s THEN %s" * len(rows) + " END")
            for key, values in zip(keys, rows.values(), strict=True):
                params += [key, prep(name, values[name])]
        sets += shared
        sql = (
            f"UPDATE {table} AS r SET {', '.join(sets)} "  # noqa: S608 - names from the model, quoted
            f"WHERE r.{pk_column} IN ({', '.join(['%s'] * len(keys))}){where_sql} RETURNING {pk_column}"
        )
        params = [*params, *shared_params, *keys, *where_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk.to_python(row[0]) for row in cursor.fetchall()]
