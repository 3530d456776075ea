from django.db import migrations, models


def billing_is_shipping(apps, schema_editor):
    """Orders placed before there was a billing address were billed to their delivery address."""
    Order = apps.get_model("orders", "Order")
    Order.objects.using(schema_editor.connection.alias).update(billing_address=models.F("shipping_address"))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_vouchers"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="billing_address",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Where the invoice goes: the shipping address unless the customer gave one.",
            ),
        ),
        migrations.RunPython(billing_is_shipping, migrations.RunPython.noop, elidable=True),
    ]
