"""The dashboard in a real browser (Debian's chromium, headless, via selenium and
/usr/bin/chromedriver): live updates from other processes without a reload,
a stage filter that hides what it should, a hostile task name shown as text."""

import shutil
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import ROOT, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are needed (scripts/setup.sh installs them)")
    profile = tempfile.mkdtemp(prefix="tasker-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# The page redraws on every update, so read it in one script call (no stale elements).
def percent(driver, run_id):
    return driver.execute_script(
        "const b = document.querySelector(arguments[0]);"
        "return b ? parseFloat(b.dataset.percent || '0') : null;",
        f'.run-card[data-run-id="{run_id}"] tr.subtask-row[data-subtask="1"] .bar',
    )


def texts(driver, selector):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);", selector
    )


def attrs(driver, selector, name):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1]));",
        selector,
        name,
    )


def test_dashboard_follows_other_processes_live(db, serve, runs, browser):
    server = serve(db)
    browser.get(server.url + "/")
    wait_for(lambda: "prepare" in attrs(browser, "details.stage", "data-stage"), what="stages")
    version = server.json("/healthz")["version"]
    assert f"tasker {version}" in texts(browser, "#footer")[0], "the footer names the version"
    # Anything that reloads the page would drop this marker.
    browser.execute_script("window.__noReload = 42;")

    # A run started by another process shows up without a reload.
    run = runs(db, "model", "score", items=200)
    wait_for(lambda: percent(browser, run.run_id) is not None, what="the new run on the page")
    assert percent(browser, run.run_id) == 0
    assert attrs(browser, f'tr.task-row[data-run-id="{run.run_id}"]', "data-task") == ["score"]

    # Increments from a third process move its progress bar.
    run.increment(50)
    wait_for(lambda: percent(browser, run.run_id) == 25.0, what="the bar at 25%")
    run.increment(100)
    wait_for(lambda: percent(browser, run.run_id) == 75.0, what="the bar at 75%")
    assert browser.execute_script("return window.__noReload") == 42

    # A hostile task name is text, never markup.
    hostile = runs(db, "prepare", XSS, items=10)
    wait_for(lambda: XSS in texts(browser, "tr.task-row .task-name"), what="the hostile task name as text")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.execute_script("return window.__noReload") == 42
    assert XSS in texts(browser, f'.run-card[data-run-id="{hostile.run_id}"] .run-head b')[0]

    Path(ROOT / "build").mkdir(exist_ok=True)
    browser.save_screenshot(str(ROOT / "build" / "cli-dashboard.png"))

    # The stage filter hides the other stages, their active runs and their events.
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("model")
    wait_for(lambda: set(attrs(browser, "details.stage", "data-stage")) == {"model"}, what="only the model stage")
    assert attrs(browser, ".run-card", "data-run-id") == [run.run_id], "the other stage's run is hidden"
    assert set(attrs(browser, "tr.task-row", "data-stage")) == {"model"}
    assert "stage=model" in browser.current_url
    # Live updates keep the filter.
    run.increment(50)
    wait_for(lambda: percent(browser, run.run_id) == 100.0, what="the bar at 100%")
    assert set(attrs(browser, "details.stage", "data-stage")) == {"model"}
    browser.save_screenshot(str(ROOT / "build" / "cli-dashboard-filtered.png"))

    # The status filter: FAILED keeps only the failed task (its stage is filtered out, so clear that first).
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("FAILED")
    wait_for(lambda: set(attrs(browser, "tr.task-row", "data-task")) == {"validate"}, what="only the failed task")

    # The run page: subtasks, events and the error detail, escaped.
    hostile.finish("fail")
    browser.get(server.url + "/#/run/" + hostile.run_id)
    wait_for(lambda: texts(browser, "#run-error-detail"), what="the run page")
    assert XSS in texts(browser, "#view-run h2")[0]
    assert "tasker-fixture was told to fail" in texts(browser, "#run-error-detail")[0]
    assert texts(browser, "pre.subtask-error-detail") == ["subtask detail <b>stays text</b>"]
    browser.save_screenshot(str(ROOT / "build" / "cli-run.png"))

    # The Gantt timeline draws one bar per run in the window, and filters too.
    browser.get(server.url + "/#/timeline")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    wait_for(lambda: len(attrs(browser, "#gantt rect.tl-bar", "data-run-id")) >= 6, what="timeline bars")
    browser.save_screenshot(str(ROOT / "build" / "cli-timeline.png"))
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("model")
    wait_for(
        lambda: set(attrs(browser, "#gantt rect.tl-bar", "data-stage")) == {"model"},
        what="only model runs in the timeline",
    )


def test_run_page_draws_resources_and_captured_metadata(db, serve, runs, browser):
    server = serve(db)
    sampled = {"TASKER_SAMPLE_INTERVAL_S": "1", "TASKER_HEARTBEAT_INTERVAL_S": "1"}
    run = runs(db, "model", "sampled", items=10, env=sampled)
    wait_for(
        lambda: len(server.json(f"/api/v1/runs/{run.run_id}")["samples"]) >= 3, timeout=20, what="three samples"
    )
    # The overview: the active run's card tells its CPU and memory.
    browser.get(server.url + "/")
    card = f'.run-card[data-run-id="{run.run_id}"] .resources'
    wait_for(lambda: texts(browser, card), what="the run's resources on its card")
    assert "iB" in texts(browser, card)[0]

    browser.get(server.url + "/#/run/" + run.run_id)
    wait_for(lambda: attrs(browser, "#memory-chart svg", "data-points"), what="the memory chart")
    assert int(attrs(browser, "#memory-chart svg", "data-points")[0]) >= 3
    assert int(attrs(browser, "#cpu-chart svg", "data-points")[0]) >= 2, "CPU needs two samples for a rate"
    assert browser.execute_script("return document.querySelectorAll('#memory-chart path').length") == 1
    terms = texts(browser, "dl.kv dt")
    for t in ["command line", "tasker"]:
        assert t in terms, terms
    browser.save_screenshot(str(ROOT / "build" / "cli-run-resources.png"))
    run.finish()


def test_task_page_shows_statistics_and_the_duration_trend(db, serve, browser):
    server = serve(db)
    browser.get(server.url + "/")
    link = 'tr.task-row[data-task="fit"] .task-name a'
    wait_for(lambda: attrs(browser, link, "href"), what="the task's link")
    browser.execute_script("document.querySelector(arguments[0]).click()", link)
    wait_for(lambda: attrs(browser, "#task-trend", "data-points"), what="the task page")
    assert texts(browser, "#view-task h2")[0] == "model / fit"
    stat = lambda k: texts(browser, f'#task-stats dd[data-stat="{k}"]')  # noqa: E731
    assert stat("success rate") == ["100%"]
    assert stat("runs") == ["2"]
    assert attrs(browser, "#task-trend", "data-points") == ["2"]
    assert set(attrs(browser, "#task-trend circle.trend-point", "data-status")) == {"COMPLETED"}
    assert len(attrs(browser, "tr.task-run-row", "data-run-id")) == 2
    api = server.json("/api/v1/stats?stage=model&task=fit")
    assert api[0]["completed"] == 2 and api[0]["duration_p50"] is not None
    assert server.get("/api/v1/stats?since=last-tuesday")[0] == 400
    browser.save_screenshot(str(ROOT / "build" / "cli-task.png"))
