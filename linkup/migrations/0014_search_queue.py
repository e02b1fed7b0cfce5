"""SQLite's search index takes new messages through a queue, indexed in batches
(linkup/store/searchindex.py): its triggers are made again. PostgreSQL: nothing changes."""

from django.db import migrations


def reinstall(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    from linkup.core.conf import setting
    from linkup.store import searchindex

    searchindex.uninstall(schema_editor.connection)
    searchindex.install(schema_editor.connection, str(setting("SEARCH_LANGUAGE")))


class Migration(migrations.Migration):
    dependencies = [("linkup", "0013_data_exports")]

    operations = [migrations.RunPython(reinstall, reinstall, elidable=False)]
