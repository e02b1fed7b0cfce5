"""SQLite's search index takes new messages by a mark, the highest id indexed, rather than
through a trigger and a queue (linkup/store/searchindex.py): made again. PostgreSQL:
nothing changes."""

from django.db import migrations


def reinstall(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    from linkup.core.conf import setting
    from linkup.store import searchindex

    searchindex.uninstall(schema_editor.connection)
    searchindex.install(schema_editor.connection, str(setting("SEARCH_LANGUAGE")))


class Migration(migrations.Migration):
    dependencies = [("linkup", "0014_search_queue")]

    operations = [migrations.RunPython(reinstall, reinstall, elidable=False)]
