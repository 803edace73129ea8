"""The MLflow UI started by the real `make dashboard`: it prints its address, lists an experiment's
runs and compares the selected runs' metrics (MLflow 3.17's React UI, driven like a person would:
experiments page -> Model training -> experiment -> tick runs -> Compare)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.browser.conftest import STORE_RUNS, SUPERSEDED_MIOU, browser_tier, screenshot

pytestmark = browser_tier


def test_make_dashboard_prints_its_url_and_guards_the_host_header(dashboard):
    dashboard.wait()
    first = dashboard.output().splitlines()[0]
    assert first.startswith(f"MLflow UI: {dashboard.url} ") and "report:" in first
    request = urllib.request.Request(f"{dashboard.url}/", headers={"Host": "attacker.example.com"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # MLflow's DNS-rebinding guard
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_dashboard_lists_the_runs_and_compares_their_metrics(driver, dashboard, mlflow_store):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    dashboard.wait()
    wait = WebDriverWait(driver, 60)
    driver.get("about:blank")  # a fresh load of the app, whatever an earlier test left open in it
    driver.get(f"{dashboard.url}/#/experiments")
    # MLflow 3 opens on its GenAI views; the runs table lives under "Model training".
    wait.until(ec.element_to_be_clickable((By.XPATH, "//*[normalize-space(text())='Model training']"))).click()
    wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "segmentation")))
    screenshot(driver, "dashboard-experiments")
    driver.find_element(By.LINK_TEXT, "segmentation").click()

    run_ids = mlflow_store["run_ids"]
    for model, run_id in run_ids.items():  # every run is listed, its name linking to its page
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"[row-id='{run_id}']")))
        name = driver.find_element(By.CSS_SELECTOR, f"[row-id='{run_id}'] a[href$='/runs/{run_id}']")
        assert name.text == model
    assert "4 matching runs" in driver.find_element(By.TAG_NAME, "body").text  # with the superseded unet
    screenshot(driver, "dashboard-runs")

    chosen = ("fcn", "unet")
    for model in chosen:  # ag-grid's row checkbox: the visible wrapper takes the click
        checkbox = f"[row-id='{run_ids[model]}'] .ag-selection-checkbox .ag-checkbox-input-wrapper"
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, checkbox))).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='runs-compare-button']"))).click()

    wait.until(lambda d: "Comparing 2 Runs" in d.find_element(By.TAG_NAME, "body").text)
    assert all(run_ids[m] in driver.current_url for m in chosen) and run_ids["segnet"] not in driver.current_url
    switch = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[aria-label='Metrics - Show diff only']")))
    section = switch.find_element(By.XPATH, "./ancestor::div[contains(@class, 'collapse-content-box')][1]")
    wait.until(lambda d: len(section.find_elements(By.CSS_SELECTOR, "a[title='Plot chart']")) == 2)
    metrics = [a.text for a in section.find_elements(By.CSS_SELECTOR, "a[title='Plot chart']")]
    assert sorted(metrics) == ["train/loss", "val/miou"]
    # The values grid is row-major: one row per metric (in the order above), one column per run, in
    # the order of the "Run ID" row at the top of the page.
    values = [float(s.text) for s in section.find_elements(By.CSS_SELECTOR, "span[tooltip-data-state]")]
    columns = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a[href*='/runs/']")
               if a.text in {run_ids[m] for m in chosen}][:2]
    assert sorted(columns) == sorted(run_ids[m] for m in chosen)
    row = metrics.index("val/miou")
    shown = dict(zip(columns, values[2 * row: 2 * row + 2], strict=True))
    assert shown == {run_ids[m]: STORE_RUNS[m] for m in chosen}
    screenshot(driver, "dashboard-compare")  # the plot of the chosen metric
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", section)  # the SPA scrolls a pane
    screenshot(driver, "dashboard-compare-metrics")


def _saved_view_link(dashboard, experiment: str) -> str:
    """The link `make dashboard` prints for ``experiment``'s current runs."""
    for line in dashboard.output().splitlines():
        if line.strip().startswith(f"current runs of {experiment}: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"make dashboard printed no saved view of {experiment}:\n{dashboard.output()}")


def test_the_saved_view_lists_the_current_runs_by_their_headline_and_compare_finds_common_ground(
        driver, dashboard, mlflow_store):
    """The link `make dashboard` prints opens the experiment with no configuration: only the current
    runs (the superseded unet hidden), ranked by val/miou, which is a column; Compare of two of them
    shows the params they share and a common artifact."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    dashboard.wait()
    wait = WebDriverWait(driver, 60)
    run_ids = mlflow_store["run_ids"]
    driver.get("about:blank")
    driver.get(_saved_view_link(dashboard, "segmentation"))
    for run_id in run_ids.values():
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"[row-id='{run_id}']")))
    superseded = f"[row-id='{mlflow_store['superseded']}']"
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, superseded))  # once the view's filter applies
    assert "3 matching runs" in driver.find_element(By.TAG_NAME, "body").text
    header = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[col-id='metrics.`val/miou`']")))
    assert "val/miou" in header.text
    cells = driver.find_elements(By.CSS_SELECTOR, "[row-id] [col-id='metrics.`val/miou`']")
    order = sorted(((c.find_element(By.XPATH, "./ancestor::*[@row-id][1]").get_attribute("row-index"),
                     float(c.text)) for c in cells if c.text), key=lambda item: int(item[0]))
    values = [value for _, value in order]
    assert values == sorted(STORE_RUNS.values(), reverse=True) and SUPERSEDED_MIOU not in values  # ranked
    screenshot(driver, "dashboard-saved-view")

    for model in ("fcn", "unet"):
        checkbox = f"[row-id='{run_ids[model]}'] .ag-selection-checkbox .ag-checkbox-input-wrapper"
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, checkbox))).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='runs-compare-button']"))).click()
    wait.until(lambda d: "Comparing 2 Runs" in d.find_element(By.TAG_NAME, "body").text)

    def section(name: str, following: str) -> str:  # a run-details section's text, rendered or scrolled away
        content = driver.find_element(By.TAG_NAME, "body").get_attribute("textContent")
        start = content.find(name, content.find("Run details"))
        return content[start:content.find(following, start)] if start >= 0 else ""

    wait.until(lambda d: "summary.json" in section("Artifacts", "Tags"))
    params = section("Parameters", "Metrics")  # "model.lr0.0030.003model.namefcnunetseed00": the shared params
    assert all(name in params for name in ("model.lr", "model.name", "seed"))
    artifacts = section("Artifacts", "Tags")
    assert "params.json" in artifacts and "No common artifacts" not in artifacts  # files of the same name
    screenshot(driver, "dashboard-compare-common")
