"""The customer is accounts' business: orders keep the user's id as a plain value, with no foreign key, so the two
modules can live on databases of their own. The column (user_id) and its data stay; only the constraint goes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_orders"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="user",
                    field=models.BigIntegerField(null=True, blank=True, db_column="user_id", db_index=True),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="order", name="user"),
                migrations.AddField(
                    model_name="order",
                    name="user_id",
                    field=models.BigIntegerField(
                        blank=True, db_index=True, help_text="The customer's id in accounts (none for guests).", null=True
                    ),
                ),
            ],
        ),
    ]
