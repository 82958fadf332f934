from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("kassa", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="InStoreReturn",
            fields=[
                ("number", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("kassa_id", models.CharField(max_length=64)),
                ("receipt", models.CharField(db_index=True, max_length=100)),
                ("receive_at", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=32)),
                ("refund_due", models.CharField(blank=True, default="", max_length=32)),
                ("lines", models.JSONField(default=list)),
                ("reference", models.CharField(blank=True, default="", max_length=200)),
                ("sequence", models.BigIntegerField(default=0)),
            ],
        ),
    ]
