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


def percent(driver, run_id):
    bars = driver.find_elements(
        By.CSS_SELECTOR, f'.run-card[data-run-id="{run_id}"] tr.subtask-row[data-subtask="1"] .bar'
    )
    return float(bars[0].get_attribute("data-percent") or 0) if bars else None


def test_dashboard_follows_other_processes_live(db, serve, runs, browser):
    server = serve(db)
    browser.get(server.url + "/")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'details.stage[data-stage="prepare"]'), what="stages")
    # Anything that reloads the page would drop this marker.
    browser.execute_script("window.__noReload = 42;")

    # A run started by another process shows up without a reload.
    run = runs(db, "model", "score", items=200)
    wait_for(lambda: percent(browser, run.run_id) is not None, what="the new run on the page")
    assert percent(browser, run.run_id) == 0
    row = browser.find_element(By.CSS_SELECTOR, f'tr.task-row[data-run-id="{run.run_id}"]')
    assert row.get_attribute("data-task") == "score"

    # Increments from a third process move its progress bar.
    run.increment(50)
    wait_for(lambda: percent(browser, run.run_id) == 25.0, what="the bar at 25%")
    run.increment(100)
    wait_for(lambda: percent(browser, run.run_id) == 75.0, what="the bar at 75%")
    assert browser.execute_script("return window.__noReload") == 42

    # A hostile task name is text, never markup.
    hostile = runs(db, "prepare", XSS, items=10)
    wait_for(
        lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "tr.task-row .task-name") if e.text == XSS],
        what="the hostile task name as text",
    )
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.execute_script("return window.__noReload") == 42
    card = browser.find_element(By.CSS_SELECTOR, f'.run-card[data-run-id="{hostile.run_id}"]')
    assert XSS in card.text

    Path(ROOT / "build").mkdir(exist_ok=True)
    browser.save_screenshot(str(ROOT / "build" / "cli-dashboard.png"))

    # The stage filter hides the other stages, their active runs and their events.
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("model")
    wait_for(
        lambda: not browser.find_elements(By.CSS_SELECTOR, 'details.stage[data-stage="prepare"]'),
        what="the prepare stage hidden",
    )
    stages = {e.get_attribute("data-stage") for e in browser.find_elements(By.CSS_SELECTOR, "details.stage")}
    assert stages == {"model"}
    assert not browser.find_elements(By.CSS_SELECTOR, f'.run-card[data-run-id="{hostile.run_id}"]')
    assert browser.find_elements(By.CSS_SELECTOR, f'.run-card[data-run-id="{run.run_id}"]')
    assert not [e for e in browser.find_elements(By.CSS_SELECTOR, "tr.task-row") if e.get_attribute("data-stage") != "model"]
    assert "stage=model" in browser.current_url
    # Live updates keep the filter.
    run.increment(50)
    wait_for(lambda: percent(browser, run.run_id) == 100.0, what="the bar at 100%")
    assert not browser.find_elements(By.CSS_SELECTOR, 'details.stage[data-stage="prepare"]')
    browser.save_screenshot(str(ROOT / "build" / "cli-dashboard-filtered.png"))

    # The status filter: FAILED keeps only the failed task (its stage is filtered out, so clear that first).
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("FAILED")
    wait_for(
        lambda: {e.get_attribute("data-task") for e in browser.find_elements(By.CSS_SELECTOR, "tr.task-row")}
        == {"validate"},
        what="only the failed task",
    )

    # The run page: subtasks, events and the error detail, escaped.
    hostile.finish("fail")
    browser.get(server.url + "/#/run/" + hostile.run_id)
    wait_for(lambda: browser.find_elements(By.ID, "run-error-detail"), what="the run page")
    assert XSS in browser.find_element(By.CSS_SELECTOR, "#view-run h2").text
    assert "tasker-fixture was told to fail" in browser.find_element(By.ID, "run-error-detail").text

    # The Gantt timeline draws one bar per run in the window, and filters too.
    browser.get(server.url + "/#/timeline")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#gantt rect.tl-bar")) >= 6, what="timeline bars")
    browser.save_screenshot(str(ROOT / "build" / "cli-timeline.png"))
    Select(browser.find_element(By.ID, "filter-stage")).select_by_value("model")
    wait_for(
        lambda: {e.get_attribute("data-stage") for e in browser.find_elements(By.CSS_SELECTOR, "#gantt rect.tl-bar")}
        == {"model"},
        what="only model runs in the timeline",
    )
