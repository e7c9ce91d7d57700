"""SQL of the one-to-one send path, a few statements per message (issue 11: at most 5 in all).

PostgreSQL lets one statement do several writes (data-modifying WITH): the message, its media and
its audit entry are inserted by one statement. Other databases (SQLite in development) run the same
writes one by one inside a transaction: the same rows, more round trips.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models, transaction
from django.db.models.sql import InsertQuery, UpdateQuery


def _insert_sql(row: models.Model) -> tuple[str, list]:
    """The INSERT Django would run for ``row`` (defaults and pre_save values applied), as SQL and params."""
    opts = row._meta
    fields = [field for field in opts.local_concrete_fields if not field.generated]
    if row.pk is None:  # the database numbers it
        fields = [field for field in fields if field is not opts.auto_field]
    query = InsertQuery(type(row))
    query.insert_values(fields, [row])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def rows_insert(rows: Sequence[models.Model]) -> None:
    """Insert these new rows (primary keys set by the caller) together: one statement on PostgreSQL."""
    if len(rows) == 1:
        rows[0].save(force_insert=True)
        return
    if connection.vendor != "postgresql":
        with transaction.atomic(savepoint=False):  # all or none; no savepoint inside a caller's transaction
            for row in rows:
                row.save(force_insert=True)
        return
    statements = [_insert_sql(row) for row in rows]
    ctes = ", ".join(f"w{index} AS ({sql})" for index, (sql, _) in enumerate(statements[:-1]))
    sql = f"WITH {ctes} {statements[-1][0]}"
    params = [param for _, statement_params in statements for param in statement_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias


def _columns(model: type[models.Model], alias: str) -> list[tuple[models.Field, str]]:
    return [(field, f"{alias}.{connection.ops.quote_name(field.column)}") for field in model._meta.concrete_fields]


def _from_row(model: type[models.Model], fields: list[models.Field], values) -> models.Model:
    """A model instance from raw column values, converted as a Django query would convert them."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for converter in col.get_db_converters(connection):
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


_claim_sql: dict[str, str] = {}


def _claim_statement() -> str:
    """The claim as SQL, built once per process (PostgreSQL): see `message_claim`."""
    if "sql" not in _claim_sql:
        from contacts.models import Channel, Contact
        from messaging.models import Direction, Message, MessageStatus, Suppression

        quote = connection.ops.quote_name
        returned = ", ".join(
            [column for _, column in _columns(Message, "m")] + [column for _, column in _columns(Contact, "c")]
        )
        # Names and enum values from the models only; every value from outside is a parameter.
        message, contact = quote(Message._meta.db_table), quote(Contact._meta.db_table)
        _claim_sql["sql"] = (
            f"UPDATE {message} AS m SET locked_until = %s "  # noqa: S608
            f"FROM {message} AS prior, {contact} AS c "
            "WHERE m.id = %s AND prior.id = m.id AND c.id = m.contact_id "
            f"AND m.direction = '{Direction.OUTBOUND}' AND m.status = '{MessageStatus.QUEUED}' "
            "AND (m.locked_until IS NULL OR m.locked_until < %s) "
            f"RETURNING {returned}, prior.locked_until, "
            f"EXISTS (SELECT 1 FROM {quote(Suppression._meta.db_table)} AS s WHERE s.channel = m.channel "
            f"AND s.address = (CASE WHEN m.channel = '{Channel.EMAIL}' THEN LOWER(c.email) ELSE c.phone END) "
            "AND s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > %s))"
        )
    return _claim_sql["sql"]


def message_claim_returning(message_id, *, now, until):
    """Claim a queued outbound message (locked until ``until`` if no other worker holds it) and read it
    with its contact and the contact's suppression flag, in one statement (PostgreSQL only).

    Returns (message with its contact, whether another worker had claimed it before and let the claim
    lapse), or None when nothing was claimed (not queued, held by another worker, not outbound, unknown).
    """
    from contacts.models import Contact
    from messaging.models import Message

    datetime_value = connection.ops.adapt_datetimefield_value
    pk = Message._meta.pk
    params = [datetime_value(until), pk.get_db_prep_value(pk.to_python(message_id), connection)]
    params += [datetime_value(now), datetime_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(_claim_statement(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    message_fields = [field for field, _ in _columns(Message, "m")]
    contact_fields = [field for field, _ in _columns(Contact, "c")]
    split = len(message_fields)
    message = _from_row(Message, message_fields, row[:split])
    contact = _from_row(Contact, contact_fields, row[split : split + len(contact_fields)])
    previous_lock, suppressed = row[-2], row[-1]
    contact.suppression_flag_channel, contact.suppression_flag_seen = message.channel, bool(suppressed)
    Message.contact.field.set_cached_value(message, contact)
    return message, previous_lock is not None


def _update_sql(queryset: models.QuerySet, values: dict) -> tuple[str, list]:
    """The UPDATE Django would run for ``queryset.update(**values)``, as SQL and params."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _count_sql(usage: models.Model, counters: Sequence[str]) -> tuple[str, list]:
    """Insert ``usage`` or, where its unique key exists, add its ``counters`` to that row's."""
    [constraint] = [c for c in usage._meta.constraints if isinstance(c, models.UniqueConstraint)]
    quote = connection.ops.quote_name
    table = quote(usage._meta.db_table)
    key = ", ".join(quote(usage._meta.get_field(name).column) for name in constraint.fields)
    added = ", ".join(f"{quote(name)} = {table}.{quote(name)} + EXCLUDED.{quote(name)}" for name in counters)
    sql, params = _insert_sql(usage)
    return f"{sql} ON CONFLICT ({key}) DO UPDATE SET {added}", params


def sent_record(
    *, attempt: tuple[models.QuerySet, dict], message: tuple[models.QuerySet, dict], usage, counters
) -> bool:
    """After a provider call (PostgreSQL): finish the attempt row, count the usage and update the message,
    in one statement. Returns whether the message row matched (``message``'s filter, e.g. still queued);
    the attempt and the usage are written either way."""
    statements = [_update_sql(*attempt), _count_sql(usage, counters)]
    message_sql, message_params = _update_sql(*message)
    ctes = ", ".join(f"w{index} AS ({sql})" for index, (sql, _) in enumerate(statements))
    pk = connection.ops.quote_name(message[0].model._meta.pk.column)
    params = [param for _, statement_params in statements for param in statement_params] + message_params
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} {message_sql} RETURNING {pk}", params)
        return cursor.fetchone() is not None
