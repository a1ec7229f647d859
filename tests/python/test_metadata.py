"""What a run records about its program by itself: `python script.py` and `python -m
pkg` in a temporary git repository, with and without local changes: the script path,
the command line, the commit and the dirty flag; and the stage `@tracked()` gives
functions of the script."""
import os
import shutil
import subprocess
import sys

import pytest

import tasker

JOB = """
import sys
import tasker

t = tasker.connect(sys.argv[1])
with t.task("meta", "job") as run:
    print(run.run_id)


@tasker.tracked(tracker=t)
def step():
    print(tasker.current_run().run_id)


step()
"""


def _git(repo, *args):
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    p = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the commit and dirty flag cannot be checked")
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "job.py").write_text(JOB)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "__main__.py").write_text(JOB)
    (repo / "README").write_text("a pipeline\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    return repo


def _run(repo, db_url, *argv):
    """Runs the job (in another directory, so the repository is found from the
    script, not the working directory); returns its two run records."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    p = subprocess.run([sys.executable, *argv, db_url], cwd=str(repo.parent), env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    t = tasker.connect(db_url)
    return [t.run(run_id) for run_id in p.stdout.split()]


@pytest.mark.parametrize("dirty", [False, True], ids=["clean", "dirty"])
def test_a_script_records_its_path_commit_and_dirty_flag(repo, db_url, dirty):
    if dirty:
        (repo / "README").write_text("changed\n")
    head = _git(repo, "rev-parse", "HEAD")
    job, step = _run(repo, db_url, str(repo / "job.py"))
    for rec in (job, step):
        assert rec.script_path == str(repo / "job.py")
        assert rec.script_filename == "job.py"
        assert (rec.git_commit, rec.git_dirty) == (head, dirty)
        assert rec.command_line == f"{sys.executable} {repo / 'job.py'} {db_url}"
        assert rec.runtime == "Python {}.{}.{}".format(*sys.version_info[:3])
        assert rec.tasker_version == tasker.__version__
    # @tracked() without a stage: the script's name, not "__main__".
    assert (step.stage_name, step.task_name) == ("job", "step")


@pytest.mark.parametrize("dirty", [False, True], ids=["clean", "dirty"])
def test_a_module_run_with_dash_m_records_its_file_commit_and_dirty_flag(repo, db_url, dirty):
    if dirty:
        (repo / "pkg" / "__init__.py").write_text("# edited\n")
    head = _git(repo, "rev-parse", "HEAD")
    job, step = _run(repo, db_url, "-m", "pkg")
    for rec in (job, step):
        assert rec.script_path == str(repo / "pkg" / "__main__.py")
        assert (rec.git_commit, rec.git_dirty) == (head, dirty)
        assert rec.command_line == f"{sys.executable} -m pkg {db_url}"
    assert (step.stage_name, step.task_name) == ("pkg", "step")


def test_an_untracked_file_does_not_make_the_tree_dirty(repo, db_url):
    (repo / "scratch.txt").write_text("notes\n")
    job, _ = _run(repo, db_url, str(repo / "job.py"))
    assert job.git_dirty is False


def test_given_values_win_and_outside_a_repository_nothing_is_guessed(tmp_path, db_url):
    script = tmp_path / "loose.py"
    script.write_text(JOB)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path.parent))
    p = subprocess.run([sys.executable, str(script), db_url], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    t = tasker.connect(db_url)
    job = t.run(p.stdout.split()[0])
    assert job.script_path == str(script)
    if not _inside_a_repository(tmp_path):
        assert (job.git_commit, job.git_dirty) == (None, None)
    with t.task("meta", "given", script_path="/opt/jobs/given.py", git_commit="abc123") as run:
        pass
    rec = run.record()
    assert (rec.script_path, rec.script_filename, rec.git_commit) == ("/opt/jobs/given.py", "given.py", "abc123")


def _inside_a_repository(path):
    for d in [path, *path.parents]:
        if (d / ".git").exists():
            return True
    return False
