"""PostgreSQL only: trigram extension, GIN indexes for full-text search and typo-tolerant title matching.

On SQLite (development) these steps do nothing: search there uses the FTS5 trigram table of migration 0008.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS product_search_idx ON catalog_product USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS product_title_trgm_idx ON catalog_product USING gin (title gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS product_title_trgm_idx", "DROP INDEX IF EXISTS product_search_idx"]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
