"""Type stubs of the native module tasker._tasker (checked by mypy.stubtest)."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, final

from typing_extensions import disjoint_base

from tasker._core import Tracker

__all__ = [
    "__version__",
    "TaskerError",
    "ArgumentError",
    "NotFoundError",
    "InvalidTransitionError",
    "AlreadyExistsError",
    "ConfigError",
    "StorageError",
    "NativeTracker",
    "RunCore",
    "Run",
    "Subtask",
    "_Noop",
    "flush_all",
    "subtask_increment",
    "_register_functional",
    "_drain_log",
    "_install_sigterm_flush",
    "cli_main",
    "DashboardServer",
    "serve_start",
]

__version__: str

class TaskerError(Exception): ...
class ArgumentError(TaskerError, ValueError): ...
class NotFoundError(TaskerError, LookupError): ...
class InvalidTransitionError(TaskerError): ...
class AlreadyExistsError(TaskerError): ...
class ConfigError(TaskerError): ...
class StorageError(TaskerError): ...

_State = Tuple[str, str, Optional[str], int, int, int, int, Optional[str], str]
_Row = Dict[str, Any]

@final
class NativeTracker:
    @staticmethod
    def connect(
        url: Optional[str] = None,
        *,
        config_file: Optional[str] = None,
        start_dir: Optional[str] = None,
        driver: Optional[str] = None,
        path: Optional[str] = None,
        host: Optional[str] = None,
        port: Optional[int] = None,
        dbname: Optional[str] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        schema: Optional[str] = None,
        sslmode: Optional[str] = None,
        sslrootcert: Optional[str] = None,
        flush_interval_ms: Optional[int] = None,
        heartbeat_interval_s: Optional[int] = None,
        lost_after_s: Optional[int] = None,
        busy_timeout_ms: Optional[int] = None,
        hostname: Optional[str] = None,
        idle_disconnect_s: Optional[int] = None,
        sample_interval_s: Optional[int] = None,
        max_log_lines: Optional[int] = None,
    ) -> NativeTracker: ...
    @staticmethod
    def from_state(state: _State) -> NativeTracker: ...
    def state(self) -> _State: ...
    @property
    def location(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    def register_tasks(self, specs: List[Dict[str, Any]]) -> List[int]: ...
    def task_start(
        self,
        stage: str,
        task: str,
        *,
        total_subtasks: Optional[int] = None,
        message: Optional[str] = None,
        version: Optional[str] = None,
        git_commit: Optional[str] = None,
        script_path: Optional[str] = None,
        script_filename: Optional[str] = None,
        log_path: Optional[str] = None,
        log_filename: Optional[str] = None,
        metadata_json: Optional[str] = None,
        attempt: Optional[int] = None,
        retry: bool = False,
    ) -> RunCore: ...
    def attach_run(self, run_id: str) -> RunCore: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def add_listener(self, callback: Callable[[_Row], Any]) -> int: ...
    def remove_listener(self, id: int) -> None: ...
    def stats(self) -> Tuple[int, int]: ...
    def task_status(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[_Row]: ...
    def active_runs(self) -> List[_Row]: ...
    def history(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        status: Optional[str] = None,
        since_us: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[_Row]: ...
    def run(self, run_id: str) -> _Row: ...
    def subtasks(self, run_id: str) -> List[_Row]: ...
    def registered_tasks(self, stage: Optional[str] = None, name: Optional[str] = None) -> List[_Row]: ...
    def stages(self) -> List[_Row]: ...
    def events(self, after: int = 0, run_id: Optional[str] = None, limit: Optional[int] = None) -> List[_Row]: ...
    def health(self) -> _Row: ...
    def task_stats(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        since_us: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[_Row]: ...
    def samples(self, run_id: str) -> List[_Row]: ...
    def run_io(self, run_id: str) -> List[_Row]: ...
    def run_logs(
        self,
        run_id: str,
        level: Optional[Union[str, int]] = None,
        since_us: Optional[int] = None,
        after: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[_Row]: ...
    def item_outcomes(
        self,
        run_id: str,
        subtask: Optional[int] = None,
        outcome: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[_Row]: ...
    def item_outcome_counts(self, run_id: str) -> List[_Row]: ...
    def delete_runs(
        self,
        *,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        run_id: Optional[str] = None,
        before_us: Optional[int] = None,
        keep_failed: bool = False,
        finished_only: bool = False,
    ) -> int: ...
    def purge(
        self,
        cutoff_us: int,
        *,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        keep_failed: bool = False,
        dry_run: bool = False,
    ) -> Tuple[int, int, int]: ...

@final
class RunCore:
    def _after_fork(self) -> None: ...

@disjoint_base
class Run:
    def __new__(cls, tracker: Any, core: RunCore) -> Run: ...  # noqa: Y034 - subclassed in Python
    @property
    def run_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def tracker(self) -> Any: ...
    def log(self, level: Union[str, int], message: str, subtask: Optional[int] = None) -> None: ...
    def subtask_start(
        self,
        name: str,
        items_total: Optional[int] = None,
        *,
        message: Optional[str] = None,
        number: Optional[int] = None,
        restart: bool = False,
    ) -> int: ...
    def subtask_number(self, number: int) -> int: ...
    def subtask_uid(self, number: int) -> Optional[str]: ...
    def _adopt(self, number: int, uid: str) -> None: ...
    def subtask_increment(self, number: int, n: Optional[int] = None) -> None: ...
    def subtask_update(
        self,
        number: int,
        items_complete: Optional[int] = None,
        percent: Optional[float] = None,
        message: Optional[str] = None,
        items_total: Optional[int] = None,
    ) -> None: ...
    def subtask_set_status(
        self,
        number: int,
        status: str,
        *,
        message: Optional[str] = None,
        error_message: Optional[str] = None,
        error_detail: Optional[str] = None,
        reset: bool = False,
    ) -> str: ...
    def update(
        self,
        current_subtask: Optional[int] = None,
        overall_percent: Optional[float] = None,
        message: Optional[str] = None,
    ) -> None: ...
    def set_status(
        self,
        status: str,
        *,
        message: Optional[str] = None,
        error_message: Optional[str] = None,
        error_detail: Optional[str] = None,
        reset: bool = False,
    ) -> str: ...
    def subtask_complete(self, number: int, message: Optional[str] = None) -> None: ...
    def subtask_fail(self, number: int, error_message: str, error_detail: Optional[str] = None) -> None: ...
    def subtask_skip(self, number: int, message: Optional[str] = None) -> None: ...
    def record_io(
        self,
        direction: str,
        name: str,
        *,
        value: Optional[str] = None,
        path: Optional[str] = None,
        hash: bool = False,
    ) -> None: ...
    def complete(self, message: Optional[str] = None) -> None: ...
    def fail(self, error_message: str, error_detail: Optional[str] = None) -> None: ...
    def cancel(self, message: Optional[str] = None) -> None: ...
    def skip(self, message: Optional[str] = None) -> None: ...
    def pause(self, message: Optional[str] = None) -> None: ...
    def resume(self, message: Optional[str] = None) -> None: ...

@disjoint_base
class Subtask:
    def __new__(cls, run: Run, number: int) -> Subtask: ...  # noqa: Y034 - subclassed in Python
    @property
    def number(self) -> int: ...
    @property
    def uid(self) -> Optional[str]: ...
    def _local_number(self) -> int: ...
    @property
    def run(self) -> Any: ...
    @property
    def run_id(self) -> str: ...
    def increment(self, n: Optional[int] = None) -> None: ...
    def log(self, level: Union[str, int], message: str) -> None: ...
    def item_failed(self, key: object, error: str) -> None: ...
    def item_skipped(self, key: object, reason: Optional[str] = None) -> None: ...
    def update(
        self,
        items_complete: Optional[int] = None,
        percent: Optional[float] = None,
        message: Optional[str] = None,
        items_total: Optional[int] = None,
    ) -> None: ...
    def set_status(
        self,
        status: str,
        *,
        message: Optional[str] = None,
        error_message: Optional[str] = None,
        error_detail: Optional[str] = None,
        reset: bool = False,
    ) -> str: ...
    def complete(self, message: Optional[str] = None) -> None: ...
    def fail(self, error_message: str, error_detail: Optional[str] = None) -> None: ...
    def skip(self, message: Optional[str] = None) -> None: ...
    def cancel(self, message: Optional[str] = None) -> None: ...

@final
class _Noop:
    def __new__(cls) -> _Noop: ...
    def call(self, n: Optional[int] = None) -> None: ...

def flush_all() -> None: ...
def subtask_increment(
    increment: int = 1,
    quiet: bool = True,
    *,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> None: ...
def _register_functional(
    current_get: Callable[[], Any],
    core_dict: Dict[str, Any],
    last_subtask: Dict[str, Any],
    runs: Dict[str, Any],
    slow: Callable[..., None],
) -> None: ...
def _drain_log() -> List[Tuple[int, str]]: ...
def _install_sigterm_flush() -> bool: ...
def cli_main(argv: Sequence[str]) -> int: ...

@final
class DashboardServer:
    @property
    def url(self) -> str: ...
    @property
    def database(self) -> str: ...
    @property
    def auth(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...

def serve_start(
    tracker: NativeTracker,
    bind: str,
    *,
    token: Optional[str] = None,
    no_auth: bool = False,
    poll_ms: int = 500,
    title: str = ...,
) -> DashboardServer: ...
