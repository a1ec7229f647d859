"""The dashboard's views in headless Chromium: layout with 300-character names at
1400 and 800 px, a text selection kept across live updates, filters kept in the
URL and applied to every part (recent events too), the timeline fitted to the
data, zoomed and paged, History (live, search, multi-select, sort, pages), the
grid, time zones, dark mode and the favicon."""

import os
import time
from datetime import datetime
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import ROOT, wait_for
from test_browser import attrs, browser, percent, texts  # noqa: F401  (browser: a fixture)

LONG_TASK = "t" + "x" * 299
LONG_STAGE = "s" * 300


def shot(driver, name):
    Path(ROOT / "build").mkdir(exist_ok=True)
    driver.save_screenshot(str(ROOT / "build" / f"cli-{name}.png"))


def page_fits(driver):
    return driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )


def set_width(driver, width):
    driver.set_window_size(width, 1000)
    wait_for(lambda: abs(driver.execute_script("return window.innerWidth") - width) <= 20, what=f"width {width}")


def test_long_names_fit_at_1400_and_800(db, serve, runs, browser):
    server = serve(db)
    run = runs(db, LONG_STAGE, LONG_TASK, items=100)
    run.increment(10)
    for width in (1400, 800):
        set_width(browser, width)
        for view in ["/", "/history", "/timeline", "/grid", "/run/" + run.run_id]:
            browser.get(server.url + "/#" + view)
            if view == "/":
                wait_for(lambda: attrs(browser, f'.run-card[data-run-id="{run.run_id}"]', "data-run-id"), what="card")
                # The full name is there on hover.
                assert attrs(browser, f'tr.task-row[data-task="{LONG_TASK}"] td.task-name', "title") == [LONG_TASK]
                assert attrs(browser, f'.run-card[data-run-id="{run.run_id}"] .run-head .name', "title") == [
                    f"{LONG_STAGE} / {LONG_TASK}"
                ]
                # A truncated cell is narrower than its text.
                w = browser.execute_script(
                    "const a = document.querySelector(arguments[0]); return [a.clientWidth, a.scrollWidth];",
                    f'tr.task-row[data-task="{LONG_TASK}"] td.task-name a',
                )
                assert w[0] < w[1], w
            elif view == "/history":
                wait_for(lambda: attrs(browser, f'tr.history-row[data-run-id="{run.run_id}"]', "data-run-id"), what="row")
            elif view == "/timeline":
                wait_for(lambda: attrs(browser, f'#gantt rect.tl-bar[data-run-id="{run.run_id}"]', "data-run-id"), what="bar")
            elif view == "/grid":
                wait_for(lambda: attrs(browser, f'a.cell[data-run-id="{run.run_id}"]', "data-run-id"), what="cell")
            else:
                wait_for(lambda: texts(browser, "#view-run h2"), what="run page")
            doc, inner, body = page_fits(browser)
            assert doc <= inner and body <= inner, f"{view} at {width}px: page {doc}px wide in {inner}px"
            if view in ("/", "/history"):
                shot(browser, f"long-names-{view.strip('/') or 'overview'}-{width}")


def test_a_text_selection_survives_live_updates(db, serve, runs, browser):
    server = serve(db)
    run = runs(db, "model", "score", items=200)
    browser.get(server.url + "/")
    name = f'.run-card[data-run-id="{run.run_id}"] .run-head .name'
    wait_for(lambda: texts(browser, name), what="the run card")
    # A real selection over the card's title, as a user's drag makes.
    browser.execute_script(
        "const n = document.querySelector(arguments[0]);"
        "window.__card = n.closest('.run-card');"
        "const r = document.createRange(); r.selectNodeContents(n);"
        "const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);",
        name,
    )
    assert browser.execute_script("return window.getSelection().toString()") == "model / score"
    for n, want in [(50, 25.0), (50, 50.0), (50, 75.0)]:
        run.increment(n)
        wait_for(lambda: percent(browser, run.run_id) == want, what=f"the bar at {want}%")
    time.sleep(1.2)  # a few more polls and ticks
    sel = browser.execute_script(
        "const s = window.getSelection();"
        "return [s.toString(), s.rangeCount && s.getRangeAt(0).startContainer.isConnected,"
        " window.__card === document.querySelector(arguments[0]).closest('.run-card')]",
        name,
    )
    assert sel == ["model / score", True, True], sel


def test_nav_keeps_the_filters_it_applies(db, serve, browser):
    server = serve(db)
    browser.get(server.url + "/#/?status=FAILED")
    wait_for(lambda: set(attrs(browser, "tr.task-row", "data-task")) == {"validate"}, what="only the failed task")
    assert Select(browser.find_element(By.ID, "filter-status")).first_selected_option.get_attribute("value") == "FAILED"
    # A nav click keeps the filter in the URL and applied.
    browser.find_element(By.ID, "nav-timeline").click()
    wait_for(lambda: attrs(browser, "#gantt rect.tl-bar", "data-status"), what="timeline bars")
    assert "status=FAILED" in browser.current_url
    assert set(attrs(browser, "#gantt rect.tl-bar", "data-status")) == {"FAILED"}
    browser.find_element(By.ID, "nav-history").click()
    wait_for(lambda: attrs(browser, "tr.history-row", "data-status"), what="history rows")
    assert "status=FAILED" in browser.current_url
    assert set(attrs(browser, "tr.history-row", "data-status")) == {"FAILED"}
    # Cleared in the select: cleared in the URL and in the data.
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    wait_for(lambda: len(set(attrs(browser, "tr.history-row", "data-status"))) > 1, what="all statuses")
    assert "status=" not in browser.current_url
    browser.find_element(By.ID, "nav-pipeline").click()
    wait_for(lambda: len(set(attrs(browser, "tr.task-row", "data-task"))) == 5, what="every task")
    # A URL without the filter clears it (the select never keeps what the URL dropped).
    browser.get(server.url + "/#/?status=FAILED")
    wait_for(lambda: set(attrs(browser, "tr.task-row", "data-task")) == {"validate"}, what="failed again")
    browser.execute_script("location.hash = '#/'")
    wait_for(lambda: len(set(attrs(browser, "tr.task-row", "data-task"))) == 5, what="filter cleared by the URL")
    assert Select(browser.find_element(By.ID, "filter-status")).first_selected_option.get_attribute("value") == ""


def test_recent_events_follow_status_and_host_filters(db, serve, runs, browser):
    server = serve(db)
    other = runs(db, "publish", "upload", items=10, env={"TASKER_HOSTNAME": "other-host"})
    other.increment(2)
    browser.get(server.url + "/")
    wait_for(lambda: other.run_id in attrs(browser, "tr.event-row", "data-run-id"), what="its events")
    statuses = {r["run_id"]: r["status"] for r in server.json("/api/v1/runs?limit=100")}
    assert len(set(statuses[i] for i in attrs(browser, "tr.event-row", "data-run-id"))) > 1

    browser.get(server.url + "/#/?status=FAILED")
    wait_for(lambda: attrs(browser, "tr.event-row", "data-run-id"), what="failed runs' events")
    shown = set(attrs(browser, "tr.event-row", "data-run-id"))
    assert shown and {statuses[i] for i in shown} == {"FAILED"}, shown

    browser.get(server.url + "/#/?host=other-host")
    wait_for(lambda: set(attrs(browser, "tr.event-row", "data-run-id")) == {other.run_id}, what="only other-host's run")
    assert set(attrs(browser, ".run-card", "data-run-id")) == {other.run_id}


def test_timeline_fits_the_data_zooms_and_pages(db, serve, browser):
    server = serve(db)
    browser.get(server.url + "/#/timeline")
    wait_for(lambda: attrs(browser, "#gantt", "data-from"), what="the chart")
    api = server.json("/api/v1/runs?limit=100")
    starts = sorted(r["start_time"] for r in api)
    frm, to = attrs(browser, "#gantt", "data-from")[0], attrs(browser, "#gantt", "data-to")[0]

    def secs(a, b):
        return browser.execute_script("return (Date.parse(arguments[1]) - Date.parse(arguments[0])) / 1000", a, b)

    span = secs(frm, to)
    assert span < 3600, f"fitted to runs a few seconds long, not a fixed day: {span}s"
    assert secs(frm, starts[0]) >= 0, "the first run starts inside the window"
    assert int(attrs(browser, "#gantt", "data-drawn")[0]) == len(api)
    assert attrs(browser, "#tl-info", "data-paged") == ["0"]
    # Zoom in halves the window; fit restores it.
    browser.find_element(By.ID, "tl-zoom-in").click()
    z = attrs(browser, "#gantt", "data-from")[0], attrs(browser, "#gantt", "data-to")[0]
    assert abs(secs(*z) - span / 2) < span * 0.01
    browser.find_element(By.ID, "tl-left").click()
    assert secs(frm, attrs(browser, "#gantt", "data-from")[0]) < secs(frm, z[0])
    browser.find_element(By.ID, "tl-reset").click()
    assert abs(secs(*[attrs(browser, "#gantt", k)[0] for k in ("data-from", "data-to")]) - span) < 1

    # Pages of 3 runs: it says so and pages on to older runs.
    browser.get(server.url + "/#/timeline?limit=3")
    browser.refresh()
    wait_for(lambda: attrs(browser, "#tl-info", "data-paged") == ["1"], what="a paged timeline")
    assert attrs(browser, "#tl-info", "data-more") == ["1"]
    assert "older runs on the next page" in texts(browser, "#tl-info")[0]
    first = set(attrs(browser, "#gantt rect.tl-bar", "data-run-id"))
    assert len(first) == 3
    browser.find_element(By.ID, "tl-older").click()
    wait_for(lambda: attrs(browser, "#tl-info", "data-offset") == ["3"], what="the second page")
    second = set(attrs(browser, "#gantt rect.tl-bar", "data-run-id"))
    assert second and not (first & second)
    newest3 = {r["run_id"] for r in sorted(api, key=lambda r: r["start_time"])[-3:]}
    assert first == newest3
    shot(browser, "timeline-paged")


def test_timeline_api_pages_instead_of_dropping_runs(db, serve):
    server = serve(db)
    all_runs = server.json("/api/v1/timeline?from=30d")
    assert all_runs["more"] is False and all_runs["fit"] is False
    n = len(all_runs["runs"])
    seen = []
    offset = 0
    while True:
        page = server.json(f"/api/v1/timeline?from=30d&limit=2&offset={offset}")
        seen += [r["run_id"] for r in page["runs"]]
        offset += 2
        if not page["more"]:
            break
    assert sorted(seen) == sorted(r["run_id"] for r in all_runs["runs"]) and len(seen) == n
    assert server.get("/api/v1/timeline?status=bogus")[0] == 400


def test_timeline_fit_draws_runs_still_going_that_started_before_the_page(db, serve, runs):
    server = serve(db)
    going = runs(db, "model", "score", items=10)
    for _ in range(2):
        runs(db, "model", "fit", items=1).finish()
    fit = server.json("/api/v1/timeline?limit=2")
    ids = [r["run_id"] for r in fit["runs"]]
    assert fit["fit"] is True and fit["more"] is True
    assert going.run_id in ids and len(ids) == 3, ids
    started = next(r["start_time"] for r in fit["runs"] if r["run_id"] == going.run_id)
    assert fit["from"] < started, "the fitted window reaches back to it"
    window = server.json("/api/v1/timeline?from=1h&limit=2")
    assert going.run_id in [r["run_id"] for r in window["runs"]]


def test_history_is_live_searchable_sortable_and_paged(db, serve, runs, browser):
    server = serve(db)
    total = len(server.json("/api/v1/runs?limit=100"))
    assert total >= 4
    browser.get(server.url + "/#/history")
    wait_for(lambda: len(attrs(browser, "tr.history-row", "data-run-id")) == total, what="history rows")
    before = total
    # Live: a run started elsewhere appears without a reload.
    run = runs(db, "model", "score", items=10)
    wait_for(lambda: run.run_id in attrs(browser, "tr.history-row", "data-run-id"), what="the new run in History")
    assert len(attrs(browser, "tr.history-row", "data-run-id")) == before + 1
    run.finish()  # durations below are then fixed
    # Search by name.
    browser.find_element(By.ID, "hist-q").send_keys("fit")
    wait_for(lambda: set(attrs(browser, "tr.history-row", "data-task")) == {"fit"}, what="only fit")
    assert "q=fit" in browser.current_url
    browser.find_element(By.ID, "hist-q").clear()
    browser.execute_script("document.getElementById('hist-q').dispatchEvent(new Event('input'))")
    # Multi-select statuses and tasks.
    sel = Select(browser.find_element(By.ID, "hist-statuses"))
    sel.select_by_value("FAILED")
    sel.select_by_value("COMPLETED")
    wait_for(lambda: set(attrs(browser, "tr.history-row", "data-status")) == {"FAILED", "COMPLETED"}, what="two statuses")
    assert "statuses=" in browser.current_url
    tasks = Select(browser.find_element(By.ID, "hist-tasks"))
    tasks.select_by_value("fit")
    tasks.select_by_value("validate")
    wait_for(lambda: set(attrs(browser, "tr.history-row", "data-task")) == {"fit", "validate"}, what="two tasks")
    api = server.json("/api/v1/history?task=fit,validate&status=FAILED,COMPLETED")
    assert sorted(attrs(browser, "tr.history-row", "data-run-id")) == sorted(r["run_id"] for r in api["rows"])
    # Sort by duration, both ways.
    browser.get(server.url + "/#/history")
    browser.refresh()
    wait_for(lambda: len(attrs(browser, "tr.history-row", "data-run-id")) == total + 1, what="all rows again")
    browser.find_element(By.CSS_SELECTOR, '#history th[data-sort="duration"]').click()
    wait_for(lambda: "sort=duration" in browser.current_url, what="sorted")

    def durations():
        ids = attrs(browser, "tr.history-row", "data-run-id")
        by_id = {r["run_id"]: r["duration_seconds"] or 0 for r in server.json("/api/v1/runs?limit=100")}
        return [by_id[i] for i in ids]

    wait_for(lambda: durations() == sorted(durations(), reverse=True), what="longest first")
    browser.find_element(By.CSS_SELECTOR, '#history th[data-sort="duration"]').click()
    wait_for(lambda: durations() == sorted(durations()), what="shortest first")
    # Pages: 2 rows a page, on to the next.
    browser.get(server.url + "/#/history?rows=2")
    browser.refresh()
    wait_for(lambda: len(attrs(browser, "tr.history-row", "data-run-id")) == 2, what="a page of 2")
    assert attrs(browser, "#hist-info", "data-more") == ["1"]
    first = attrs(browser, "tr.history-row", "data-run-id")
    browser.find_element(By.ID, "hist-next").click()
    wait_for(lambda: "offset=2" in browser.current_url, what="page 2")
    wait_for(lambda: attrs(browser, "tr.history-row", "data-run-id") not in ([], first), what="other rows")
    assert not set(first) & set(attrs(browser, "tr.history-row", "data-run-id"))
    # A date range: nothing before the first run, everything up to now.
    assert server.json("/api/v1/history?until=2000-01-01T00:00:00Z")["rows"] == []
    assert server.get("/api/v1/history?sort=bogus")[0] == 400
    shot(browser, "history")


def test_history_sorts_and_pages_by_any_column_through_the_api(db, serve, runs):
    server = serve(db)
    going = runs(db, "model", "score", items=10)  # active: its duration runs to now
    everything = server.json("/api/v1/history?limit=1000")["rows"]
    assert going.run_id in [r["run_id"] for r in everything]

    def key(column, r):
        return {
            "duration": (r["duration_seconds"] is not None, r["duration_seconds"] or 0),
            "stage": (r["stage_name"], r["task_name"]),
            "task": (r["task_name"], r["stage_name"]),
            "status": (r["status"],),
            "host": (r["hostname"] is not None, r["hostname"] or ""),
        }[column] + (datetime.fromisoformat(r["start_time"]), r["run_id"])

    for column in ["duration", "stage", "task", "status", "host"]:
        for direction in ["asc", "desc"]:
            got = server.json(f"/api/v1/history?sort={column}&dir={direction}&limit=1000")
            assert got["total"] == len(everything) and got["more"] is False
            ids = [r["run_id"] for r in got["rows"]]
            if column != "duration":  # the active run's duration grows between reads
                want = sorted(got["rows"], key=lambda r: key(column, r), reverse=direction == "desc")
                assert ids == [r["run_id"] for r in want], (column, direction)
            pages, offset = [], 0
            while True:
                page = server.json(f"/api/v1/history?sort={column}&dir={direction}&limit=3&offset={offset}")
                pages += [r["run_id"] for r in page["rows"]]
                offset += 3
                if not page["more"]:
                    break
            assert pages == ids, (column, direction)
    # Filters apply before the order: several statuses, `active`, tasks, a search.
    failed_or_done = server.json("/api/v1/history?sort=task&status=FAILED,COMPLETED&limit=1000")
    assert {r["status"] for r in failed_or_done["rows"]} == {"FAILED", "COMPLETED"}
    active = server.json("/api/v1/history?sort=host&status=active")
    assert [r["run_id"] for r in active["rows"]] == [going.run_id] and active["total"] == 1
    found = server.json("/api/v1/history?sort=duration&q=FIT&task=fit,validate")
    assert {r["task_name"] for r in found["rows"]} == {"fit"} and found["total"] == len(found["rows"])
    assert server.json("/api/v1/history?sort=status&q=nothing-like-it")["rows"] == []


def test_grid_shows_runs_by_task_and_opens_them(db, serve, browser):
    server = serve(db)
    browser.get(server.url + "/#/grid")
    wait_for(lambda: attrs(browser, "tr.grid-row", "data-task"), what="the grid")
    assert attrs(browser, "tr.grid-row", "data-task") == ["download", "validate", "fit", "score", "upload"]
    fit = 'tr.grid-row[data-task="fit"] a.cell'
    assert attrs(browser, fit, "data-status") == ["COMPLETED", "COMPLETED"]
    assert attrs(browser, 'tr.grid-row[data-task="validate"] a.cell', "data-status") == ["FAILED"]
    newest = attrs(browser, fit, "data-run-id")[-1]
    api = server.json("/api/v1/runs?stage=model&task=fit&limit=1")
    assert newest == api[0]["run_id"], "the newest run is on the right"
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", fit
    )
    assert colour == "rgb(22, 163, 74)", colour
    shot(browser, "grid")
    browser.find_elements(By.CSS_SELECTOR, fit)[-1].click()
    wait_for(lambda: browser.current_url.endswith("#/run/" + newest), what="the run page")
    wait_for(lambda: texts(browser, "#view-run h2"), what="the run page drawn")
    # Filters apply to the grid too.
    browser.get(server.url + "/#/grid?status=FAILED")
    wait_for(lambda: attrs(browser, "tr.grid-row", "data-task") == ["validate"], what="only the failed task")


def test_time_zone_label_utc_toggle_dark_mode_and_favicon(db, serve, browser):
    server = serve(db)
    browser.get(server.url + "/")
    wait_for(lambda: texts(browser, "#updated") and texts(browser, "#updated")[0], what="the update time")
    local = texts(browser, "#updated")[0]
    zone = browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert local.endswith(zone), local
    browser.find_element(By.ID, "tz-utc").click()
    wait_for(lambda: texts(browser, "#updated")[0].endswith("UTC"), what="UTC")
    browser.refresh()
    wait_for(lambda: (texts(browser, "#updated") or [""])[0].endswith("UTC"), what="UTC remembered")
    status, headers, body = server.get("/favicon.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and body.startswith("<svg")
    assert attrs(browser, 'link[rel="icon"]', "href")[0].endswith("/favicon.svg")
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert light == "rgb(248, 250, 252)" and dark == "rgb(11, 18, 32)", (light, dark)
    shot(browser, "dark")


def test_run_page_gantt_of_subtasks(db, serve, browser):
    server = serve(db)
    download = server.json("/api/v1/runs?stage=prepare&task=download&limit=1")[0]["run_id"]
    browser.get(server.url + "/#/run/" + download)
    wait_for(lambda: attrs(browser, "#subtask-gantt svg", "data-subtasks"), what="the subtask Gantt")
    assert attrs(browser, "#subtask-gantt svg", "data-subtasks") == ["3"]
    assert attrs(browser, "#subtask-gantt rect.sub-bar", "data-status") == ["COMPLETED", "COMPLETED", "SKIPPED"]
    assert attrs(browser, "#subtask-gantt rect.sub-bar", "data-subtask") == ["1", "2", "3"]
    shot(browser, "run-gantt")


def test_run_page_log_tail_only_with_show_logs(db, serve, runs, browser, tmp_path):
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {i} of a long log\n" for i in range(10000)) + "the last line <b>stays text</b>\n")
    run = runs(db, "model", "logged", items=10, env={"TASKER_FIXTURE_LOG_PATH": str(log)})
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    piped = runs(db, "model", "piped", items=10, env={"TASKER_FIXTURE_LOG_PATH": str(fifo)})
    relative = runs(db, "model", "relative", items=10, env={"TASKER_FIXTURE_LOG_PATH": "logs/run.log"})

    off = serve(db)
    status, _, body = off.get(f"/api/v1/runs/{run.run_id}/log")
    assert status == 403 and "--show-logs" in body
    browser.get(off.url + "/#/run/" + run.run_id)
    wait_for(lambda: texts(browser, "#run-log-off"), what="the log's place on the page")
    assert "--show-logs" in texts(browser, "#run-log-off")[0]

    on = serve(db, "--show-logs")
    d = on.json(f"/api/v1/runs/{run.run_id}/log?path=/etc/passwd")
    assert d["path"] == str(log), "the path comes from the database, never from the request"
    assert d["truncated"] and d["size"] == log.stat().st_size and len(d["text"]) <= 64 * 1024
    assert d["text"].endswith("the last line <b>stays text</b>\n") and d["text"].startswith("line ")
    assert len(on.json(f"/api/v1/runs/{run.run_id}/log?bytes=100000000")["text"]) <= 1024 * 1024
    started = time.monotonic()
    status, _, body = on.get(f"/api/v1/runs/{piped.run_id}/log")
    assert status == 404 and "not a regular file" in body and time.monotonic() - started < 5
    status, _, body = on.get(f"/api/v1/runs/{relative.run_id}/log")
    assert status == 404 and "absolute" in body
    browser.get(on.url + "/#/run/" + run.run_id)
    wait_for(lambda: texts(browser, "#run-log-text"), what="the log tail")
    assert texts(browser, "#run-log-text")[0].endswith("the last line <b>stays text</b>\n")
    assert browser.execute_script("return document.querySelectorAll('#run-log-text b').length") == 0
    shot(browser, "run-log")
