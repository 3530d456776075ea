"""CartLine.user (a ForeignKey to the user model) becomes a plain indexed user_id column.

The column user_id, its values and its index stay; only the foreign-key constraint goes (AlterField to
db_constraint=False), so nothing is copied. The state then forgets the relation and knows the column as an integer
field, and the unique (user_id, variant_id) constraint is the same one in the database.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0001_cart"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="cartline",
                    name="user",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="cartline", name="cart_line_once_per_variant"),
                migrations.RemoveField(model_name="cartline", name="user"),
                migrations.AddField(
                    model_name="cartline",
                    name="user_id",
                    field=models.BigIntegerField(db_index=True),
                    preserve_default=False,
                ),
                migrations.AddConstraint(
                    model_name="cartline",
                    constraint=models.UniqueConstraint(
                        fields=("user_id", "variant_id"), name="cart_line_once_per_variant"
                    ),
                ),
            ],
        ),
    ]
