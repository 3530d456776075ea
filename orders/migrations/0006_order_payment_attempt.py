from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_refund_request"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="payment_attempt",
            field=models.PositiveSmallIntegerField(
                default=1, help_text='Which attempt at paying payment_id is: 1 at checkout, one more per "Pay again".'
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="payment_failure",
            field=models.CharField(
                blank=True, help_text="Why the current attempt's payment failed, in the customer's words.", max_length=300
            ),
        ),
    ]
