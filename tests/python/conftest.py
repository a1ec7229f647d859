"""Shared fixtures: every test uses real SQLite files in temporary directories, and the
default configuration points at a temporary file too (never the user's database)."""
import os
import sys
import tempfile

import pytest

_SESSION_DIR = tempfile.mkdtemp(prefix="tasker-pytest-")
# Set before tasker is imported anywhere, and inherited by worker processes.
os.environ["TASKER_DB_URL"] = "sqlite://" + os.path.join(_SESSION_DIR, "default.db")
os.environ["XDG_DATA_HOME"] = os.path.join(_SESSION_DIR, "data")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_SESSION_DIR, "config")
os.environ["XDG_STATE_HOME"] = os.path.join(_SESSION_DIR, "state")
sys.path.insert(0, os.path.dirname(__file__))

import tasker  # noqa: E402


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "tasker.db")


@pytest.fixture
def db_url(db_path):
    return "sqlite://" + db_path


@pytest.fixture
def tracker(db_url):
    t = tasker.connect(db_url)
    yield t
    t.close()


@pytest.fixture(autouse=True)
def _fresh_default(tmp_path, monkeypatch):
    """Each test gets its own default database and no leftover active run."""
    monkeypatch.setenv("TASKER_DB_URL", "sqlite://" + str(tmp_path / "default.db"))
    tasker.set_default_tracker(None)
    tasker.tasker_context(None)
    yield
    tasker.set_default_tracker(None)
    tasker.tasker_context(None)
