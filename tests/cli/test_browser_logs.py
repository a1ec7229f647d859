"""The run page's log panel in a real browser (headless chromium, as in
test_browser.py): lines logged by other processes appear live without a
reload, the level filter hides what it should, hostile lines and failed items
are text (no markup, no script), and failed items are listed with their error."""

import subprocess
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import FIXTURE, ROOT, wait_for
from test_browser import XSS, attrs, browser, texts  # noqa: F401 - browser is a fixture

HOSTILE = XSS + '<img src=x onerror="window.__pwned=1"> \x1b[31mred\x07'


def log(db, run_id, level, message):
    subprocess.run([FIXTURE, "log", f"sqlite://{db}", run_id, level, message], check=True)


def test_the_run_page_shows_log_lines_live_with_a_level_filter(db, serve, runs, browser):  # noqa: F811
    run = runs(db, "logs", "dashboard", items=10)
    log(db, run.run_id, "info", "before the page opened")
    server = serve(db)
    browser.get(server.url + "/#/run/" + run.run_id)
    wait_for(lambda: "before the page opened" in texts(browser, "#run-log .log-msg"), what="the first line")
    browser.execute_script("window.__noReload = 42;")

    # Lines from other processes arrive without a reload.
    log(db, run.run_id, "warn", "a warning from elsewhere")
    log(db, run.run_id, "error", HOSTILE)
    wait_for(lambda: HOSTILE in texts(browser, "#run-log .log-msg"), what="the hostile line as text")
    assert texts(browser, "#run-log .log-msg") == ["before the page opened", "a warning from elsewhere", HOSTILE]
    assert attrs(browser, "#run-log .log-line", "data-level") == ["info", "warn", "error"]
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return window.__pwned === undefined && document.querySelectorAll('#run-log img, #run-log script').length === 0")
    assert browser.execute_script("return window.__noReload") == 42

    # The level filter: warnings and errors only, and new lines keep to it.
    Select(browser.find_element(By.ID, "log-level")).select_by_value("warn")
    wait_for(lambda: texts(browser, "#run-log .log-msg") == ["a warning from elsewhere", HOSTILE], what="warn and above")
    log(db, run.run_id, "info", "hidden by the filter")
    log(db, run.run_id, "error", "shown by the filter")
    wait_for(lambda: "shown by the filter" in texts(browser, "#run-log .log-msg"), what="a new error")
    assert "hidden by the filter" not in texts(browser, "#run-log .log-msg")
    # Re-renders of the page (the run is active) keep the panel and its filter.
    run.increment(5)
    wait_for(lambda: browser.execute_script(
        "const r = document.querySelector('tr.subtask-row'); return r && r.dataset.itemsComplete === '5';"),
        what="the page refreshed")
    assert browser.find_element(By.ID, "log-level").get_attribute("value") == "warn"
    assert "shown by the filter" in texts(browser, "#run-log .log-msg")

    # Failed items, listed with their error, as text.
    subprocess.run([FIXTURE, "item-failed", f"sqlite://{db}", run.run_id, str(run.subtask), "county <b>7</b>",
                    XSS], check=True)
    run.increment(1)
    wait_for(lambda: texts(browser, "tr.failed-item .item-key") == ["county <b>7</b>"], what="the failed item")
    assert texts(browser, "tr.failed-item .item-reason") == [XSS]
    Path(ROOT / "build").mkdir(exist_ok=True)
    browser.save_screenshot(str(ROOT / "build" / "cli-run-logs.png"))
