"""UserPresence.hidden_since: since when every tab of an online user is hidden, so that
notifications reach them by Web Push and email while the app is open but out of sight."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("linkup", "0015_search_mark")]

    operations = [
        migrations.AddField(
            model_name="userpresence",
            name="hidden_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
