"""Which database alias holds a module's tables.

By default every module lives in "default". Setting DATABASE_URL_<MODULE> adds an alias named after the module
(config/settings.py) and ModuleRouter sends that module's reads, writes and migrations there. Relations are
allowed only inside one module (and to the user model, which accounts owns), so no query joins across modules.
The kernel's outbox tables are migrated into every alias: a module publishes its events in its own database,
inside its own transaction. Django's own apps, and with them accounts (the user model they point at), stay in
"default".
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Field, Model, QuerySet

KERNEL = "kernel"


def unique(queryset: QuerySet) -> Any:
    """The one row a lookup by a unique key finds, or None.

    Unlike .first(), adds no ORDER BY (the model's default ordering, or the primary key): compiling and running
    the ordering is a measurable part of a hot-path query, and a unique lookup has nothing to order.
    """
    try:
        return queryset.get()
    except queryset.model.DoesNotExist:
        return None


_insert_statements: dict[tuple[type[Model], str, tuple[str, ...]], tuple[str, list[Field]]] = {}


def insert_row(model: type[Model], *, using: str, **values: Any) -> None:
    """INSERT one row of `model` with these field values: one statement whose text is built once per model,
    database and set of fields, no model instance and no save signals.

    For append-only rows written on every hot path (the outbox). Each value is converted by its field, as the ORM
    would; defaults are not applied, so give every column that has no database default.
    """
    key = (model, using, tuple(values))
    statement = _insert_statements.get(key)
    connection = connections[using]
    if statement is None:
        fields = [model._meta.get_field(name) for name in values]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 (names)
        statement = _insert_statements[key] = (sql, fields)
    sql, fields = statement
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def db_for_module(module: str) -> str:
    """The database alias of a module (an app label such as "catalog")."""
    return module if module in settings.DATABASES else "default"


class ModuleRouter:
    def _module_alias(self, model: type[Model]) -> str | None:
        label = model._meta.app_label
        if label in settings.SHOP_MODULES and label != KERNEL:
            return db_for_module(label)
        return None  # Django's own apps and the kernel: the default rules

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self._module_alias(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self._module_alias(model)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        user_label = settings.AUTH_USER_MODEL.split(".")[0]
        labels = {obj1._meta.app_label, obj2._meta.app_label}
        if len(labels) == 1 or user_label in labels:
            return True
        if labels & set(settings.SHOP_MODULES):
            return False  # no relation between two shop modules
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if app_label == KERNEL:
            return True  # every database carries its own outbox
        if app_label in settings.SHOP_MODULES:
            return db == db_for_module(app_label)
        return db == "default"  # Django's own apps (auth, sessions, admin, ...) stay with the default database
