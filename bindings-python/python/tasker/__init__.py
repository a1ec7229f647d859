"""tasker: see what a data pipeline is doing.

Quick start::

    import tasker

    with tasker.task("ingest", "download", total_subtasks=2) as run:
        for url in run.track(urls, "files"):
            fetch(url)
        with run.subtask("parse", items_total=len(files)) as st:
            for f in files:
                parse(f)
                st.increment()

The database comes from ``TASKER_DB_URL`` (or ``.tasker.yml``, or the default
SQLite file); ``tasker.connect(url)`` opens one explicitly. Progress calls cost
about as much as a method call: a background thread writes them every 200 ms.
"""
from ._tasker import (
    AlreadyExistsError,
    ArgumentError,
    ConfigError,
    InvalidTransitionError,
    NotFoundError,
    StorageError,
    TaskerError,
    __version__,
)
from ._records import (
    EventRecord,
    RunRecord,
    StageRecord,
    Status,
    SubtaskRecord,
    TaskRecord,
    TransitionEvent,
    to_pandas,
)
from ._core import (
    Run,
    Subtask,
    Tracked,
    Tracker,
    configure,
    connect,
    current_run,
    default_tracker,
    flush,
    set_default_tracker,
    task,
    tracked,
)
from ._functional import (
    get_active_tasks,
    get_registered_tasks,
    get_stages,
    get_subtask_progress,
    get_task_history,
    get_task_status,
    register_task,
    register_tasks,
    subtask_complete,
    subtask_fail,
    subtask_increment,
    subtask_start,
    subtask_update,
    task_complete,
    task_fail,
    task_start,
    task_update,
    tasker_context,
)

__all__ = [
    "__version__",
    # errors
    "TaskerError",
    "ArgumentError",
    "NotFoundError",
    "InvalidTransitionError",
    "AlreadyExistsError",
    "ConfigError",
    "StorageError",
    # records
    "Status",
    "RunRecord",
    "SubtaskRecord",
    "TaskRecord",
    "StageRecord",
    "EventRecord",
    "TransitionEvent",
    "to_pandas",
    # handles
    "Tracker",
    "Run",
    "Subtask",
    "Tracked",
    "connect",
    "configure",
    "default_tracker",
    "set_default_tracker",
    "flush",
    "task",
    "tracked",
    "current_run",
    # functional API (the R package's names)
    "register_task",
    "register_tasks",
    "task_start",
    "task_update",
    "task_complete",
    "task_fail",
    "subtask_start",
    "subtask_update",
    "subtask_increment",
    "subtask_complete",
    "subtask_fail",
    "get_task_status",
    "get_active_tasks",
    "get_task_history",
    "get_subtask_progress",
    "get_registered_tasks",
    "get_stages",
    "tasker_context",
]
