"""Room.description: what a group is for, set by its owner or admins."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("linkup", "0017_account_theme")]

    operations = [
        migrations.AddField(
            model_name="room",
            name="description",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
    ]
