import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('kernel', '0002_deliveries'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeadTask',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(db_index=True, help_text="The task's name, for example orders.expire_unpaid.", max_length=200)),
                ('task_id', models.CharField(blank=True, max_length=255)),
                ('args', models.JSONField(default=list)),
                ('kwargs', models.JSONField(default=dict)),
                ('error', models.TextField(help_text='The exception of the last try.')),
                ('traceback', models.TextField(blank=True)),
                ('attempts', models.PositiveIntegerField(default=1, help_text='How many times it was tried.')),
                ('failed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('status', models.CharField(choices=[('dead', 'Dead'), ('retried', 'Retried')], default='dead', max_length=10)),
                ('retried_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-failed_at', '-id'],
                'indexes': [models.Index(fields=['status', 'failed_at'], name='deadtask_status_idx')],
            },
        ),
    ]
