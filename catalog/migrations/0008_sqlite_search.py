"""SQLite only (3.34 or newer, for the trigram tokenizer): the search index of catalog.search, an FTS5 table with
one row per active product (rowid = the product's id), filled here from the products there are and kept in step
by catalog.projection.refresh_products.

On PostgreSQL these steps do nothing: search there uses the vector and trigram indexes of migration 0002.
"""

import sqlite3

from django.db import migrations

FORWARD = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_product_fts USING fts5(title, brand, description, tokenize='trigram')",
    "DELETE FROM catalog_product_fts",
    "INSERT INTO catalog_product_fts (rowid, title, brand, description)"
    " SELECT id, title, brand_name, description FROM catalog_product WHERE is_active",
]
BACKWARD = ["DROP TABLE IF EXISTS catalog_product_fts"]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite" or sqlite3.sqlite_version_info < (3, 34, 0):
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0007_updated_at")]
    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
