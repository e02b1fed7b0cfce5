"""The full-text index of message bodies (linkup/store/searchindex.py): a generated tsvector
column and its GIN index on PostgreSQL, an FTS5 table and its triggers on SQLite."""

from django.db import migrations


def install(apps, schema_editor):
    from linkup.core.conf import setting
    from linkup.store import searchindex

    searchindex.install(schema_editor.connection, str(setting("SEARCH_LANGUAGE")))


def uninstall(apps, schema_editor):
    from linkup.store import searchindex

    searchindex.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("linkup", "0009_attachments")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
