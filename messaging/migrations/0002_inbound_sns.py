"""Inbound WhatsApp through SNS: one InboundEvent per SNS message, the Meta payload and keyword flag
on inbound messages, and the permission to replay dead-letter queues (Admin has every permission)."""

from django.db import migrations, models

from accounts.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("accounts", "0002_role_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="dlqmessage",
            options={
                "ordering": ["-created_at"],
                "permissions": [("replay_dlqmessage", "Can replay dead-lettered messages")],
            },
        ),
        migrations.AddField(
            model_name="message",
            name="keyword_action",
            field=models.CharField(
                blank=True,
                choices=[("opt_out", "Opt-out keyword"), ("opt_in", "Opt-in keyword")],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="whatsapp_payload",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="inboundevent",
            name="sns_message_id",
            field=models.CharField(max_length=128, unique=True),
        ),
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
