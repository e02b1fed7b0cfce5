"""Account.theme: the web client's colours, the device's choice or the person's."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("linkup", "0016_presence_hidden_since")]

    operations = [
        migrations.AddField(
            model_name="account",
            name="theme",
            field=models.CharField(
                blank=True,
                choices=[("", "System"), ("light", "Light"), ("dark", "Dark")],
                default="",
                max_length=5,
            ),
        ),
    ]
