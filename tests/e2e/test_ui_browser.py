"""The operator's path in a real browser (Debian's headless Chromium driven by Playwright): log in to the
Airflow UI, trigger the pipeline through its form with a non-default Param, wait for the run to succeed,
open the model report page and find the new run with its plots. Screenshots: test-artifacts/ui/."""
from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from scripts import ui

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "ui"
PORT = 8093
BASE = f"http://127.0.0.1:{PORT}"
DAG_ID = "parkinson_gait_pipeline"
ROUNDS = 7  # bias_variance_rounds: not the default (20), so the run proves the form's value reached the task
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def airflow_ui():
    SHOTS.mkdir(parents=True, exist_ok=True)
    user, password = ui.login()
    process = ui.start(PORT, SHOTS / "airflow-standalone.log")
    try:
        ui.wait_ready(PORT, process)
        yield user, password
    finally:
        ui.stop(process)


def rest(path: str, token: str, body: dict | None = None, method: str = "GET") -> dict:
    request = urllib.request.Request(f"{BASE}{path}", method=method, data=None if body is None else
                                     json.dumps(body).encode(), headers={"Authorization": f"Bearer {token}",
                                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def token(user: str, password: str) -> str:
    request = urllib.request.Request(f"{BASE}/auth/token", data=json.dumps({"username": user, "password": password})
                                     .encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access_token"]


def wait_for_dag(access: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rest(f"/api/v2/dags/{DAG_ID}", access)
            return
        except urllib.error.HTTPError:
            time.sleep(3)
    raise TimeoutError(f"{DAG_ID} not parsed by the dag-processor after {timeout}s")


def wait_for_run(access: str, run_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    run = {}
    while time.monotonic() < deadline:
        run = rest(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}", access)
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(5)
    raise TimeoutError(f"run {run_id} still {run.get('state')} after {timeout}s")


def test_trigger_from_the_form_and_find_the_run_in_the_report(airflow_ui):
    from playwright.sync_api import expect, sync_playwright

    from gait_airflow.report_app import PLOT_NAMES
    from include.layout import batch_id

    user, password = airflow_ui
    access = token(user, password)
    wait_for_dag(access)
    before = {r["dag_run_id"] for r in rest(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100", access)["dag_runs"]}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)

        page.goto(f"{BASE}/")
        page.fill('input[name="username"]', user)
        page.fill('input[name="password"]', password)
        page.click('button[type="submit"]')
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"{BASE}/dags/{DAG_ID}")
        page.click('[data-testid="trigger-dag-button"]')
        rounds = page.locator('input[name="element_bias_variance_rounds"]')
        expect(rounds).to_have_value("20")
        expect(page.get_by_text("Bias-variance rounds").first).to_be_visible()
        rounds.fill(str(ROUNDS))
        page.locator('input[name="element_cv_folds"]').fill("3")
        page.screenshot(path=str(SHOTS / "trigger-form.png"), full_page=True)
        page.click('[data-testid="trigger-dag-submit"]')
        # The dialog closes once the API has accepted the run; on a busy 2-core machine that takes seconds,
        # and the toast may come and go before a check sees it, so the run itself is what is awaited.
        deadline = time.monotonic() + 120
        new = []
        while not new and time.monotonic() < deadline:
            runs = rest(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100", access)["dag_runs"]
            new = [r for r in runs if r["dag_run_id"] not in before]
            time.sleep(1)
        page.screenshot(path=str(SHOTS / "after-submit.png"), full_page=True)
        if not new:
            dialog = page.get_by_role("dialog")
            shown = dialog.first.inner_text()[-1500:] if dialog.count() else "(dialog closed)"
            pytest.fail(f"the form created no run in 120 s; submit enabled: "
                        f"{page.locator('[data-testid=trigger-dag-submit]').is_enabled() if dialog.count() else '-'}; "
                        f"the dialog's end: {shown}")
        assert len(new) == 1, "the form created more than one run"
        expect(page.get_by_role("dialog")).to_have_count(0)
        assert new[0]["conf"]["bias_variance_rounds"] == ROUNDS
        run = wait_for_run(access, new[0]["dag_run_id"])
        assert run["state"] == "success", f"run {run['dag_run_id']} ended {run['state']}; see the Airflow UI logs"

        logical = run.get("logical_date")
        batch = batch_id(datetime.fromisoformat(logical.replace("Z", "+00:00")) if logical else None,
                         run["dag_run_id"])
        model_run = f"{DAG_ID}__{batch}"
        listed = [r for r in rest("/model-report/api/runs", access)["runs"] if r["run_id"] == model_run]
        assert listed and set(listed[0]["plots"]) == set(PLOT_NAMES), model_run

        page.goto(f"{BASE}/model-report/")
        row = page.locator(f'#history tr[data-run-id="{model_run}"]')
        expect(row).to_be_visible()
        images = page.locator(f'section.run-plots[data-run-id="{model_run}"] img')
        expect(images).to_have_count(3)
        for i in range(3):
            images.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
            assert images.nth(i).evaluate("img => img.naturalWidth") == 640
        page.screenshot(path=str(SHOTS / "model-report.png"), full_page=True)

        page.goto(f"{BASE}/plugin/model-report")  # the same page inside the UI, from the Browse menu
        expect(page.frame_locator("iframe").locator("h1")).to_have_text("Parkinson gait: model report")
        page.screenshot(path=str(SHOTS / "model-report-in-airflow.png"))
        browser.close()

    from tests.e2e.test_pipeline_e2e import metrics_documents

    doc = metrics_documents(model_run)[0]
    assert doc["params"]["bias_variance_rounds"] == ROUNDS and doc["evaluation"]["bias_variance"]["rounds"] == ROUNDS


def test_report_refuses_anonymous_requests(airflow_ui):
    for path in ("/model-report/", "/model-report/api/runs"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{BASE}{path}", timeout=30)
        assert error.value.code in (401, 403), path


def test_api_refuses_a_bad_param_and_creates_no_run(airflow_ui):
    """A trigger with window_size -5 is refused by Param validation (HTTP 400 naming the Param); no run exists."""
    access = token(*airflow_ui)
    wait_for_dag(access)
    run_id = f"bad-params-{int(time.time())}"
    with pytest.raises(urllib.error.HTTPError) as error:
        rest(f"/api/v2/dags/{DAG_ID}/dagRuns", access, method="POST",
             body={"dag_run_id": run_id, "logical_date": None, "conf": {"window_size": -5}})
    detail = json.loads(error.value.read())["detail"]
    assert error.value.code == 400, detail
    assert str(detail).startswith("Invalid input for param window_size: -5 is less than the minimum of 2"), detail
    with pytest.raises(urllib.error.HTTPError) as missing:
        rest(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", access)
    assert missing.value.code == 404
