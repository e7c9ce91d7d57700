"""A replay holds a dead-lettered message while its handler runs (messaging.dlq)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_outbound_delivery"),
    ]

    operations = [
        migrations.AddField(
            model_name="dlqmessage",
            name="replay_lease_until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
