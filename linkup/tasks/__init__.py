"""The task worker's work (`manage.py db_worker`): the notification fallback chain.

This layer sits below the actions: an action enqueues a task in its own transaction (the
task row commits with the notification it serves), and the worker's work reads and writes
through models and the store only, never through an action.

`deliver_fallback` stays importable here: task rows enqueued by earlier versions name it as
`linkup.tasks.deliver_fallback`.
"""

from linkup.tasks.schedule import deliver_fallback, schedule_fallback

__all__ = ["deliver_fallback", "schedule_fallback"]
