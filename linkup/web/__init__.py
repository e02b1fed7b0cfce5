"""The web edge: the REST API (django-ninja), its schemas and error middleware, and the web
client's pages. Templates and static files stay where Django looks for them (linkup/templates,
linkup/static)."""
