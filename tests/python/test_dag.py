"""Task dependencies and the DAG from Python, on a real SQLite file: bulk and single
registration, refused cycles and unknown names (nothing stored), cross-stage edges,
and blocked/waiting on a scripted pipeline where one upstream fails."""
import json
import shutil
import subprocess

import pytest

import tasker


@pytest.fixture
def tr(tmp_path):
    t = tasker.connect("sqlite://" + str(tmp_path / "dag.db"))
    yield t
    t.close()


def edges(t):
    return sorted(t.dag().edges)


def test_dependencies_cross_stages_single_and_bulk(tr):
    tr.register_tasks(
        [
            {"stage": "ingest", "name": "download"},
            {"stage": "prep", "name": "clean", "depends_on": ["ingest/download"]},
            {"stage": "model", "name": "fit", "depends_on": ("prep/clean",)},
        ]
    )
    tr.register_task("report", "render", depends_on=["model/fit", "ingest/download"])
    assert edges(tr) == [
        ("ingest/download", "prep/clean"),
        ("ingest/download", "report/render"),
        ("model/fit", "report/render"),
        ("prep/clean", "model/fit"),
    ]
    # A bare name is a task of the same stage; one string is one name.
    tr.register_task("prep", "stats", depends_on="clean")
    assert ("prep/clean", "prep/stats") in edges(tr)


def test_cycles_and_unknown_names_are_refused_and_store_nothing(tr):
    tr.register_tasks(
        [
            {"stage": "a", "name": "x"},
            {"stage": "b", "name": "y", "depends_on": ["a/x"]},
        ]
    )
    before = edges(tr)
    with pytest.raises(tasker.ArgumentError, match=r"a/x -> b/y -> a/x"):
        tr.register_task("a", "x", depends_on=["b/y"])
    with pytest.raises(tasker.ArgumentError, match="b/nope"):
        tr.register_tasks(
            [
                {"stage": "c", "name": "new"},
                {"stage": "c", "name": "z", "depends_on": ["b/nope"]},
            ]
        )
    assert edges(tr) == before
    assert [t.task_name for t in tr.registered_tasks(stage="c")] == []
    with pytest.raises(tasker.ArgumentError, match="depends_on"):
        tr.register_task("a", "x", depends_on=[1, 2])


def test_blocked_and_waiting_on_a_pipeline_where_one_upstream_fails(tr):
    tr.register_tasks(
        [
            {"stage": "ingest", "name": "a"},
            {"stage": "ingest", "name": "b"},
            {"stage": "prep", "name": "c", "depends_on": ["ingest/a"]},
            {"stage": "prep", "name": "d", "depends_on": ["ingest/b"]},
            {"stage": "model", "name": "e", "depends_on": ["prep/c", "prep/d"]},
        ]
    )
    tr.task("ingest", "a").complete()
    tr.task("prep", "c").fail("bad input")
    running = tr.task("ingest", "b")
    dag = tasker.get_dag(tracker=tr)
    e, d = dag.node("model/e"), dag.node("prep/d")
    assert e.blocked and e.blocked_by == ["prep/c"] and not e.waiting
    assert d.waiting and d.waiting_for == ["ingest/b"] and not d.blocked
    assert dag.node("prep/c").status == tasker.Status.FAILED
    assert e.rank == 2
    running.complete()
    dag = tr.dag()
    assert not dag.node("prep/d").waiting
    text = str(dag)
    assert "[blocked by prep/c]" in text
    assert dag.to_mermaid().startswith("flowchart LR")
    assert {"from": "ingest/a", "to": "prep/c"} in json.loads(dag.render("json"))["edges"]
    with pytest.raises(tasker.ArgumentError, match="svg"):
        dag.render("svg")
    # The downstream run records how long it waited for its last upstream.
    r = tr.task("prep", "d")
    r.complete()
    assert tr.run(r.run_id).wait_seconds >= 0
    assert tr.run(running.run_id).wait_seconds is None


def test_dot_is_accepted_by_graphviz(tr):
    tr.register_tasks(
        [
            {"stage": "s", "name": 'a "quoted" <b>'},
            {"stage": "s", "name": "b", "depends_on": ['s/a "quoted" <b>']},
        ]
    )
    dot = shutil.which("dot")
    assert dot, "Graphviz dot is needed (scripts/setup.sh installs the graphviz package)"
    svg = subprocess.run(
        [dot, "-Tsvg"], input=tr.dag().to_dot(), capture_output=True, text=True, check=True
    ).stdout
    assert svg.count('class="node"') == 2 and svg.count('class="edge"') == 1
