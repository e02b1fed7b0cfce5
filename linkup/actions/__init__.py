"""Write paths: `access_*` fetch and authorize, `check_*` validate, `do_*` write inside one
transaction and queue their events with `events.send_event_on_commit`; the edges publish them
after the commit (linkup.realtime.edges.perform)."""
