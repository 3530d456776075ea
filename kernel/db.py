"""Which database alias holds a module's tables.

By default every module lives in "default". Setting DATABASE_URL_<MODULE> adds an alias named after the module
(config/settings.py) and ModuleRouter sends that module's reads, writes and migrations there. Relations are
allowed only inside one module (and to the user model, which accounts owns), so no query joins across modules.
The kernel's outbox tables are migrated into every alias: a module publishes its events in its own database,
inside its own transaction.

Identity and Django's auth tables live together. auth (groups, permissions), admin (the log entries) and sessions
point at the user model or at each other (permissions and log entries at contenttypes), and a foreign key, a join or
a cascading delete cannot reach into another database. So accounts and those apps form one group that goes to the
"accounts" alias when DATABASE_URL_ACCOUNTS is set (to "default" otherwise), and any other Django app with tables
stays in "default".
"""

from __future__ import annotations

import contextvars
import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import NotSupportedError, connections, router, transaction
from django.db.models import Field, Model, QuerySet
from django.db.transaction import TransactionManagementError

KERNEL = "kernel"


class CrossModuleTransaction(RuntimeError):
    """A module's transaction was opened inside another module's: one module, one transaction."""


@dataclass
class _Block:
    """One open kernel.db.atomic() block: its module and the events published in it, not yet written."""

    module: str
    alias: str
    outbox: list[Any] = field(default_factory=list)  # what kernel.bus publishes in it, written in one statement


# The kernel.db.atomic() blocks the running code is inside, innermost last.
_open: contextvars.ContextVar[tuple[_Block, ...]] = contextvars.ContextVar("shop_module_transactions", default=())


@contextmanager
def atomic(*, module: str, savepoint: bool = True) -> Iterator[str]:
    """A transaction of one module, on that module's own database alias (yields the alias).

        with atomic(module="orders"):
            ...                                  # orders' tables only; publish() writes to orders' outbox

    Opening another module's transaction inside it raises CrossModuleTransaction: a service never writes another
    module's tables inside its own transaction, whether the two share a database or not. Cross-module effects
    go through the outbox (kernel.bus.publish) and are applied by the other module in its own transaction.
    Nesting the same module's blocks is fine (a savepoint, as with transaction.atomic). Usable as a decorator.

    The events published in it (kernel.bus.publish) are written in one statement when the outermost block ends
    without error, inside the transaction; a block that raises drops its own. A plain transaction.atomic()
    savepoint inside a block does not: roll back inside a module's transaction with a nested kernel.db.atomic().
    The module is popped before the commit, so on_commit callbacks (delivery) run outside it.
    """
    outer = _open.get()
    if outer and outer[-1].module != module:
        raise CrossModuleTransaction(
            f"{module}'s transaction opened inside {outer[-1].module}'s: publish an event or a command instead"
        )
    alias = db_for_module(module)
    with transaction.atomic(using=alias, savepoint=savepoint):
        block = _Block(module, alias)
        token = _open.set((*outer, block))
        try:
            yield alias
        finally:
            _open.reset(token)
        if outer:  # a savepoint that held: its events join the enclosing block's
            outer[-1].outbox.extend(block.outbox)
        elif block.outbox:  # the outermost block: its events are written just before the commit
            _outbox_writer(alias, block.outbox)


def current_module() -> str | None:
    """The module whose kernel.db.atomic() block the running code is in, or None outside one."""
    stack = _open.get()
    return stack[-1].module if stack else None


def _no_outbox_writer(alias: str, entries: list[Any]) -> None:
    raise RuntimeError("kernel.bus registers the outbox writer when it is imported")


_outbox_writer: Callable[[str, list[Any]], None] = _no_outbox_writer


def set_outbox_writer(writer: Callable[[str, list[Any]], None]) -> None:
    """kernel.bus hands in the function that writes a committed block's outbox entries (kernel.db cannot import
    the bus, which imports it)."""
    global _outbox_writer  # one writer per process, set once at import
    _outbox_writer = writer


def outbox_buffer() -> list[Any] | None:
    """The outbox entries of the open kernel.db.atomic() block, or None outside one."""
    stack = _open.get()
    return stack[-1].outbox if stack else None


def unique(queryset: QuerySet) -> Any:
    """The one row a lookup by a unique key finds, or None.

    Unlike .first(), adds no ORDER BY (the model's default ordering, or the primary key): compiling and running
    the ordering is a measurable part of a hot-path query, and a unique lookup has nothing to order.
    """
    try:
        return queryset.get()
    except queryset.model.DoesNotExist:
        return None


# ---------------------------------------------------------------- reads compiled once


_FIRST_INSTANT = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


def _stand_in(value: Any, i: int, j: int) -> Any:
    if isinstance(value, datetime.datetime):  # an instant of year 1: no real row's
        return _FIRST_INSTANT + datetime.timedelta(seconds=i, microseconds=j)
    return -1_000_000_000 - 1000 * i - j if isinstance(value, int) else f"\0arg{i}.{j}\0"


def _sentinels(args: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """Stand-ins for the call's arguments, each unlike any real value (a negative int, a string with a NUL), and
    the same flattened: one per parameter, in order."""
    stand_ins: list[Any] = []
    flat: list[Any] = []
    for i, arg in enumerate(args):
        if isinstance(arg, list | tuple):
            values = [_stand_in(v, i, j) for j, v in enumerate(arg)]
            stand_ins.append(values)
            flat += values
        else:
            stand_ins.append(_stand_in(arg, i, 0))
            flat.append(stand_ins[-1])
    return stand_ins, flat


def prepared_rows(name: str, build: Callable[..., QuerySet], *args: Any, using: str) -> list[tuple[Any, ...]]:
    """The rows of build(*args), a values_list() query whose only parameters that change from call to call are
    `args` (ints, strings or aware datetimes, or lists of them: a list gives one parameter per item), as the ORM
    would return them.

    The ORM compiles the query once per name, number of items in each list and database connection; each call
    then runs that SQL with its own values and converts the columns with the ORM's own converters. Compiling is
    most of the cost of a small read on the hot path (the cart's and the checkout's variants, the product page):
    filter(), values_list(), joins and as_sql() on every call, against a dictionary lookup here.
    A list is taken as given: pass unique items (an IN of the same value twice is still one match).
    """
    if any(isinstance(arg, list | tuple) and not arg for arg in args):
        return []  # WHERE x IN (): nothing, as the ORM says without asking the database
    connection = connections[using]
    compiled = connection.__dict__.setdefault("_prepared_reads", {})  # per connection: per thread
    key = (name, tuple(len(arg) if isinstance(arg, list | tuple) else None for arg in args))
    entry = compiled.get(key)
    if entry is None:
        stand_ins, flat = _sentinels(args)
        compiler = build(*stand_ins).query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        params = list(params)
        positions = [params.index(value) for value in flat]
        if any(params.count(value) != 1 for value in flat):
            raise ValueError(f"{name}: each argument must be one parameter of the query")
        columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
        entry = compiled[key] = (sql, params, positions, list(compiler.get_converters(columns).items()))
    sql, params, positions, converters = entry
    values = list(params)
    flat = [v for arg in args for v in (arg if isinstance(arg, list | tuple) else (arg,))]
    for position, value in zip(positions, flat, strict=True):
        values[position] = value
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    if not converters:
        return rows
    converted = []
    for row in rows:
        row = list(row)
        for position, (functions, expression) in converters:
            value = row[position]
            for convert in functions:
                value = convert(value, expression, connection)
            row[position] = value
        converted.append(tuple(row))
    return converted


_prepared_models: dict[str, tuple[type[Model], list[str]]] = {}


def prepared_objects(name: str, build: Callable[..., QuerySet], *args: Any, using: str) -> list[Model]:
    """prepared_rows for a query of model instances (every concrete field, no select_related or prefetch):
    build(*args) is a queryset of one model, select_for_update() allowed. The instances come from Model.from_db,
    as the ORM makes them, so they can be saved."""

    def values(*stand_ins: Any) -> QuerySet:
        queryset = build(*stand_ins)
        names = [f.attname for f in queryset.model._meta.concrete_fields]
        _prepared_models[name] = (queryset.model, names)
        return queryset.values_list(*names)

    rows = prepared_rows(name, values, *args, using=using)
    if not rows:
        return []
    model, names = _prepared_models[name]
    return [model.from_db(using, names, row) for row in rows]


def unique_by(model: type[Model], *, for_update: bool = False, using: str | None = None, **lookup: Any) -> Any:
    """The one row of `model` whose unique field has this value (one keyword: pk=..., number=...), or None; with
    for_update, locked (SELECT ... FOR UPDATE, inside a transaction). What unique() does, with the statement
    compiled once per model, field and lock (kernel.db.prepared_objects): the payment, the order, the charge and
    the reservation that every step of a purchase reads by its key."""
    ((field, value),) = lookup.items()
    if value is None:  # IS NULL has no parameter to stand in for
        queryset = model._default_manager.filter(**lookup)
        return unique(queryset.select_for_update() if for_update else queryset)

    def build(stand_in: Any) -> QuerySet:
        queryset = model._default_manager.filter(**{field: stand_in}).order_by()
        return queryset.select_for_update() if for_update else queryset

    alias = using or (router.db_for_write(model) if for_update else router.db_for_read(model)) or "default"
    if for_update and connections[alias].get_autocommit():  # what the ORM's compiler checks, on every call
        raise TransactionManagementError("unique_by(for_update=True) must run inside a transaction")
    found = prepared_objects(f"unique:{model._meta.label}:{field}:{for_update}", build, value, using=alias)
    return found[0] if found else None


_insert_statements: dict[tuple[Any, ...], tuple[str, list[Field]]] = {}


def insert_rows(
    model: type[Model],
    rows: list[dict[str, Any]],
    *,
    using: str,
    ignore_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any] | None:
    """INSERT rows of `model` (dicts with the same field names): one statement whose text is built once per
    model, database, set of fields and number of rows; no model instances and no save signals.

    For rows written on every hot path (the outbox, the recommendations' ledger). Each value is converted by its
    field, as the ORM would; defaults are not applied, so give every column that has no database default. bulk_create
    says the same in one statement but compiles it anew each time: 171 against 74 microseconds a row here (SQLite,
    measured), more than the insert itself, on every event of every purchase.

    ignore_conflicts: a row that would break a unique constraint is left out (ON CONFLICT DO NOTHING, PostgreSQL
    and SQLite alike). returning: a column to return for each row inserted (rows left out return nothing); only
    where the database has INSERT ... RETURNING (connection.features.can_return_columns_from_insert), else
    NotSupportedError.
    """
    if not rows:
        return [] if returning else None
    names = tuple(rows[0])
    key = (model, using, names, len(rows), ignore_conflicts, returning)
    statement = _insert_statements.get(key)
    connection = connections[using]
    if returning and not connection.features.can_return_columns_from_insert:
        raise NotSupportedError(f"{connection.display_name} here has no INSERT ... RETURNING")
    if statement is None:
        fields = [model._meta.get_field(name) for name in names]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        values = ", ".join([row] * len(rows))
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608 (names only)
        if ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if returning:
            sql += f" RETURNING {quote(model._meta.get_field(returning).column)}"
        statement = _insert_statements[key] = (sql, fields)
    sql, fields = statement
    params = [field.get_db_prep_save(row[field.name], connection) for row in rows for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [found for (found,) in cursor.fetchall()] if returning else None


def db_for_module(module: str) -> str:
    """The database alias of a module (an app label such as "catalog")."""
    return module if module in settings.DATABASES else "default"


# The Django apps whose tables live with accounts: each has a foreign key to the user model or to another of them.
IDENTITY_APPS = frozenset({"accounts", "auth", "contenttypes", "admin", "sessions"})


def module_of(app_label: str) -> str | None:
    """The shop module an app's tables belong to: "accounts" for the identity group, None for the kernel (which
    lives in every alias) and for an app of no module."""
    if app_label in IDENTITY_APPS:
        return "accounts"
    if app_label in settings.SHOP_MODULES and app_label != KERNEL:
        return app_label
    return None


class ModuleRouter:
    def _module_alias(self, model: type[Model]) -> str | None:
        module = module_of(model._meta.app_label)
        return db_for_module(module) if module else None  # the kernel and other apps: the default rules

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self._module_alias(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self._module_alias(model)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        labels = {obj1._meta.app_label, obj2._meta.app_label}
        if len(labels) == 1:
            return True
        if {module_of(label) for label in labels} == {"accounts"}:
            return True  # inside the identity group (a permission's content type, a log entry's user)
        if labels & set(settings.SHOP_MODULES):
            return False  # no relation between two shop modules
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if app_label == KERNEL:
            return True  # every database carries its own outbox
        module = module_of(app_label)
        if module:
            return db == db_for_module(module)
        return db == "default"  # Django's other apps stay with the default database
