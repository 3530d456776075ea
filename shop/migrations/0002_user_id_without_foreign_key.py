"""The customer is accounts' business: shop_cartline keeps the user's id as a plain value, with no foreign key, so the
two modules can live on databases of their own.

0001 now creates user_id as a plain column. A database migrated before that has the column (same name, type,
index and data) with a foreign-key constraint to the user table: this drops that constraint, and nothing else.
"""

from django.db import migrations


def drop_user_foreign_key(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":  # SQLite cannot drop a constraint; its foreign keys need the table rebuilt
        model = apps.get_model("shop", "CartLine")
        with connection.cursor() as cursor:
            relations = connection.introspection.get_relations(cursor, "shop_cartline")
        if "user_id" in relations:
            schema_editor._remake_table(model)
        return
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "shop_cartline")
    quote = schema_editor.quote_name
    for name, info in constraints.items():
        if info["foreign_key"] and info["columns"] == ["user_id"]:
            schema_editor.execute(f"ALTER TABLE {quote(TABLE)} DROP CONSTRAINT {quote(name)}")


TABLE = "shop_cartline"


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_cart")]

    operations = [migrations.RunPython(drop_user_foreign_key, migrations.RunPython.noop)]
