"""The dashboard's DAG page in headless Chromium: nodes and edges drawn from
/api/v1/dag, a node's colour changing live when a run in another process
completes, a click opening the latest run, and a hostile task name shown as text."""

import json
import subprocess

from selenium.webdriver.common.by import By

from conftest import FIXTURE, wait_for
from test_browser import browser  # noqa: F401  (the fixture)

XSS = "<img src=x onerror=\"document.title='pwned'\">"


def nodes(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#dag g.dag-node')).map(g => ({"
        "id: g.getAttribute('data-id'), status: g.getAttribute('data-status'),"
        "fill: g.querySelector('rect').getAttribute('fill'),"
        "cls: g.getAttribute('class'), text: g.textContent}));"
    )


def test_dag_page_draws_the_graph_and_follows_runs_live(tmp_path, serve, runs, browser):  # noqa: F811
    db = tmp_path / "dag.db"
    specs = [
        {"stage": "ingest", "name": "download"},
        {"stage": "prep", "name": "clean", "depends_on": ["ingest/download"]},
        {"stage": "prep", "name": XSS, "depends_on": ["ingest/download"]},
        {"stage": "model", "name": "fit", "depends_on": ["prep/clean", f"prep/{XSS}"]},
    ]
    subprocess.run([FIXTURE, "register", f"sqlite://{db}", json.dumps(specs)], check=True)
    run = runs(db, "ingest", "download", 10)
    server = serve(db)
    browser.get(server.url + "/#/dag")

    drawn = wait_for(lambda: len(nodes(browser)) == 4 and nodes(browser), what="four nodes")
    by_id = {n["id"]: n for n in drawn}
    edges = browser.execute_script(
        "return Array.from(document.querySelectorAll('#dag path.dag-edge'))"
        ".map(p => p.getAttribute('data-from') + ' -> ' + p.getAttribute('data-to'));"
    )
    assert sorted(edges) == sorted(
        [
            "ingest/download -> prep/clean",
            f"ingest/download -> prep/{XSS}",
            "prep/clean -> model/fit",
            f"prep/{XSS} -> model/fit",
        ]
    )
    assert by_id["ingest/download"]["status"] == "RUNNING"  # its subtask started
    running_fill = by_id["ingest/download"]["fill"]
    assert "waiting" in by_id["prep/clean"]["cls"]
    # The hostile name is text: no element was made of it, no script ran.
    assert XSS in by_id[f"prep/{XSS}"]["text"]
    assert browser.find_elements(By.CSS_SELECTOR, "#dag img") == []
    assert browser.title != "pwned"

    # Another process completes the run: the node turns green without a reload,
    # and the tasks below stop waiting.
    run.finish("complete")
    done = wait_for(
        lambda: next((n for n in nodes(browser) if n["id"] == "ingest/download" and n["status"] == "COMPLETED"), None),
        what="the node to turn COMPLETED",
    )
    assert done["fill"] == "#a5d6a7" and done["fill"] != running_fill
    wait_for(
        lambda: all("waiting" not in n["cls"] for n in nodes(browser) if n["id"].startswith("prep/")),
        what="prep tasks to stop waiting",
    )

    # A click opens the latest run of the task.
    browser.execute_script(
        "document.querySelector('#dag g.dag-node[data-id=\"ingest/download\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}));"
    )
    wait_for(lambda: browser.execute_script("return location.hash") == "#/run/" + run.run_id, what="the run page")
    assert browser.title != "pwned"


def test_metrics_report_the_wait_of_a_downstream_run(tmp_path, serve, runs):
    from prometheus_client.parser import text_string_to_metric_families

    db = tmp_path / "wait.db"
    specs = [{"stage": "a", "name": "up"}, {"stage": "b", "name": "down", "depends_on": ["a/up"]}]
    subprocess.run([FIXTURE, "register", f"sqlite://{db}", json.dumps(specs)], check=True)
    runs(db, "a", "up", 1).finish("complete")
    runs(db, "b", "down", 1)
    server = serve(db)

    def wait_series():
        _, _, body = server.get("/metrics")
        for fam in text_string_to_metric_families(body):
            if fam.name == "tasker_task_wait_seconds":
                return {(s.labels["stage"], s.labels["task"]): s.value for s in fam.samples}
        return None

    series = wait_for(lambda: wait_series(), what="the wait gauge")
    assert list(series) == [("b", "down")]
    assert 0 <= series[("b", "down")] < 60
    dag = server.json("/api/v1/dag")
    assert [n["wait_seconds"] is not None for n in dag["nodes"]] == [False, True]
