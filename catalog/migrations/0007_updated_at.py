# updated_at on categories, variants and stock (for the REST API's updated_since), and indexes on the product's
# dates (its list is ordered and filtered by them). Existing rows get the time of the migration.

import django.utils.timezone
from django.db import migrations, models


def _updated_at():
    return models.DateTimeField(auto_now=True, db_index=True, default=django.utils.timezone.now)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0006_stockreturn'),
    ]

    operations = [
        migrations.AddField(model_name='category', name='updated_at', field=_updated_at(), preserve_default=False),
        migrations.AddField(model_name='variant', name='updated_at', field=_updated_at(), preserve_default=False),
        migrations.AddField(model_name='stockitem', name='updated_at', field=_updated_at(), preserve_default=False),
        migrations.AlterField(
            model_name='product',
            name='created_at',
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='product',
            name='updated_at',
            field=models.DateTimeField(auto_now=True, db_index=True),
        ),
    ]
