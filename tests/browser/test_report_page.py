"""The report page in a real browser: built by the real `python -m pipelines.report` from a small set of
metrics, plots and figures, it loads every image from disk, shows the metrics files' values in its
leaderboards and links each run to the MLflow UI that `make dashboard` serves."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import pytest

from components.metrics_files import write_stage_metrics
from tests.browser.conftest import STORE_RUNS, browser_tier, screenshot
from tests.conftest import REPO

pytestmark = browser_tier

ABSENT_RUN = "0" * 32  # a run id the store does not have


def _metrics(run_ids: dict[str, str]) -> dict[str, dict]:
    """Metrics files of a partial pipeline: three segmentation models, one GAN, DQN, one translator."""
    common = {"git_commit": "0123456789abcdef0123456789abcdef01234567", "params_hash": "abcdef012345"}
    files = {
        f"segmentation-{model}": {**common, "headline_metric": "val/miou", "val/miou": miou + 0.000123,
                                  "val/pixel_accuracy": 0.95, "train/loss": 0.2, "epochs": 3,
                                  "train_wall_s": 61.27, "mlflow_run_id": run_ids.get(model, ABSENT_RUN)}
        for model, miou in STORE_RUNS.items()
    }
    files["segmentation-segnet"]["mlflow_run_id"] = ABSENT_RUN  # in the store under another id: no link
    files["generative-dcgan"] = {**common, "headline_metric": "val/fid_evaluator", "val/fid_evaluator": 19.16493,
                                 "val/fid_evaluator_floor": 2.687, "val/fid_evaluator_untrained": 924.85,
                                 "val/is_evaluator": 8.1, "epochs": 20, "train_wall_s": 44.0,
                                 "mlflow_run_id": ABSENT_RUN}
    files["rl-dqn"] = {**common, "headline_metric": "rl/greedy_return_mean", "rl/greedy_return_mean": 487.5,
                       "rl/return_threshold": 475.0, "rl/episode_return_mean": 431.2, "rl/env_steps": 21000.0,
                       "train_wall_s": 61.0, "mlflow_run_id": ABSENT_RUN, "env": "CartPole-v1"}
    files["rl-q_learning"] = {**common, "headline_metric": "rl/greedy_return_mean", "rl/greedy_return_mean": 0.747,
                              "rl/optimal_return": 0.705, "train_wall_s": 2.0, "mlflow_run_id": ABSENT_RUN,
                              "env": "GridWorld-v0"}
    # the widest family: its descriptor's eight columns and more
    files["adversarial-cnn_pgd"] = {**common, "headline_metric": "val/robust_accuracy", "val/robust_accuracy": 0.7148,
                                    "test/clean_accuracy": 0.9519, "val/accuracy": 0.9519, "train/loss": 0.74,
                                    "epochs": 80, "train_wall_s": 164.0, "mlflow_run_id": ABSENT_RUN,
                                    **{f"test/{name}": 0.5 for name in (
                                        "accuracy", "robust_accuracy", "robust_accuracy_strong", "random_sign_accuracy",
                                        "least_likely_success/one_step", "least_likely_success/iterative",
                                        "universal_fooling_rate", "universal_random_fooling_rate")}}
    files["translation-gru"] = {**common, "headline_metric": "val/bleu", "val/bleu": 53.52607, "test/bleu": 51.2,
                                "test/bleu/len_01-10": 70.1, "test/exact_match/len_01-10": 0.41,
                                "test/bleu/len_11-20": 40.3, "test/exact_match/len_11-20": 0.05,
                                "epochs": 2, "train_wall_s": 85.2, "mlflow_run_id": ABSENT_RUN}
    files["tune-segmentation"] = {
        "family": "segmentation", "model": "unet", "metric": "val/miou", "mode": "max", "enabled": True,
        "num_trials": 3, "num_stopped_early": 1, "best_value": 0.83, "best_config": {"lr": 0.004},
        "default_value": 0.81, "wall_s": 95.0, "parent_run_id": run_ids["unet"], "experiment_id": "1",
        "trials": [{"trial_id": f"t{i}", "config": {"lr": lr}, "value": v, "epochs": e, "stopped_early": s}
                   for i, (lr, v, e, s) in enumerate(((0.004, 0.83, 3, False), (0.002, 0.81, 3, False),
                                                      (0.0005, 0.4, 1, True)))],
    }
    files["tune-detection"] = {"family": "detection", "model": "fcos", "enabled": False}
    return files


def _curve(path, x, ys, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([x, *ys])
        writer.writerows(rows)


def _png(path, size, color):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture(scope="module")
def report(tmp_path_factory, mlflow_store, dashboard):
    root = tmp_path_factory.mktemp("report-fixture")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    files = _metrics(mlflow_store["run_ids"])
    for name, data in files.items():
        write_stage_metrics(root, name, data)
    (root / "plots").mkdir()
    for model, miou in STORE_RUNS.items():
        _curve(root / "plots" / f"segmentation-{model}.csv", "epoch", ["train/loss", "val/miou"],
               [[e, 1 / e, miou * e / 3] for e in (1, 2, 3)])
    _curve(root / "plots" / "generative-dcgan.csv", "epoch", ["train/loss_d", "val/fid_evaluator"],
           [[1, 1.2, ""], [10, 1.1, 80.0], [20, 1.0, 19.16]])
    _curve(root / "plots" / "rl-dqn.csv", "env_steps", ["rl/episode_return_mean"], [[1000, 20], [21000, 431.2]])
    _curve(root / "plots" / "translation-gru.csv", "epoch", ["val/bleu"], [[1, 30.0], [2, 53.5]])
    figures = {"segmentation-fcn": ["masks.png"], "segmentation-unet": ["masks.png"],
               "generative-dcgan": ["samples.png", "interpolation.png"], "rl-dqn": ["learning_curve.png"]}
    for i, (stage, names) in enumerate(figures.items()):
        for j, name in enumerate(names):
            _png(root / "figures" / stage / name, (120 + 10 * j, 90), (40 * i, 120, 200 - 30 * j))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COURSELAB_"))}
    env["MPLCONFIGDIR"] = str(root / ".mpl")
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.report", "--metrics", "metrics", "--plots", "plots", "--figures", "figures",
         "--params", "params.yaml", "--out", "reports", "--tracking-uri", mlflow_store["uri"],
         "--dashboard-url", dashboard.url],
        cwd=root, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"root": root, "dir": root / "reports", "metrics": files, "figures": figures, "stdout": proc.stdout}


def _open(driver, report):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get((report["dir"] / "index.html").as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && "
                                   "[...document.images].every(i => i.complete)"))


def test_report_loads_every_image(driver, report):
    _open(driver, report)
    images = driver.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert len(images) == sum(map(len, report["figures"].values()))  # the curves are interactive charts
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"broken images: {broken}"
    scripts = driver.execute_script("return [...document.scripts].map(s => s.getAttribute('src')).filter(s => s)")
    assert scripts == ["assets/plotly.min.js"]
    for src in [s for s, _, _ in images] + scripts:  # relative: the folder opens from disk
        assert not src.startswith(("http:", "https:", "/")) and (report["dir"] / src).is_file(), src
    charts = driver.execute_script("return [...document.querySelectorAll('.chart')].map(c => "
                                   "[c.id, c.querySelectorAll('.main-svg').length > 0])")
    # one per leaderboard with a CSV (RL: CartPole's; q_learning has none), the segmentation sweep and
    # segmentation's headline across its MLflow runs (the store's unet ran twice)
    assert sorted(charts) == [[name, True] for name in (
        "curves-generative", "curves-rl-CartPole-v1", "curves-segmentation", "curves-translation",
        "history-segmentation", "sweep-segmentation")]
    screenshot(driver, "report", full_page=True)


def test_a_chart_answers_hover_with_the_network_off(driver, report):
    """Plotly comes from the report's own assets: with the network off, hovering a point of the
    segmentation curves shows its model, epoch and value."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    try:
        _open(driver, report)
        driver.execute_script("document.getElementById('curves-segmentation').scrollIntoView()")
        x, y = driver.execute_script(
            "const p = document.querySelectorAll('#curves-segmentation .scatterlayer .trace')[0]"
            ".querySelectorAll('.point')[1].getBoundingClientRect(); return [p.x + p.width / 2, p.y + p.height / 2]")
        action = ActionBuilder(driver)
        action.pointer_action.move_to_location(int(x), int(y))
        action.perform()
        label = WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "return document.querySelector('#curves-segmentation .hoverlayer').textContent"))
        assert "fcn" in label and "epoch 2" in label and f"val/miou {STORE_RUNS['fcn'] * 2 / 3:.4g}" in label
        screenshot(driver, "report-hover")
    finally:
        driver.delete_network_conditions()


def test_leaderboards_show_the_metrics_files_values(driver, report):
    from selenium.webdriver.common.by import By

    _open(driver, report)
    shown = {}
    for table in driver.find_elements(By.CSS_SELECTOR, "table.leaderboard"):
        family, headline = table.get_attribute("data-family"), table.get_attribute("data-headline")
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
            value = row.find_element(By.CSS_SELECTOR, "td.headline").text
            shown[f"{family}-{row.get_attribute('data-model')}"] = (headline, float(value))
    expected = {name: data for name, data in report["metrics"].items() if not name.startswith("tune-")}
    assert set(shown) == set(expected)
    for name, data in expected.items():
        headline, value = shown[name]
        assert headline == data["headline_metric"]
        assert value == pytest.approx(data[headline], abs=5e-5), name  # shown with 4 decimals
    rows = driver.find_elements(By.CSS_SELECTOR, "table.leaderboard[data-family='segmentation'] tbody tr")
    assert [r.get_attribute("data-model") for r in rows] == ["unet", "fcn", "segnet"]  # best first

    missing = driver.find_element(By.ID, "missing-stages").text
    assert "train_detection@faster_rcnn" in missing and "rl@reinforce" in missing and "evaluator" in missing
    assert "train_segmentation@dilated" not in missing  # not in pipeline.segmentation: not expected
    assert "rl@q_learning" not in missing
    assert "train_segmentation@unet" not in missing
    segnet = driver.find_element(By.CSS_SELECTOR, "tr[data-model='segnet']").text
    assert "no link: run not in the MLflow store" in segnet
    sweep = driver.find_element(By.CSS_SELECTOR, "section.sweep[data-family='segmentation']").text
    assert "3 trials of unet" in sweep and "lr=0.004" in sweep
    assert "disabled" in driver.find_element(By.CSS_SELECTOR, "section.sweep[data-family='detection']").text
    screenshot(driver, "report-leaderboards")


def test_run_link_opens_the_run_in_the_dashboard(driver, report, dashboard, mlflow_store):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, report)
    link = driver.find_element(By.CSS_SELECTOR, "table.leaderboard tr[data-model='unet'] a")
    run_id = mlflow_store["run_ids"]["unet"]
    assert link.get_attribute("href") == (
        f"{dashboard.url}/#/experiments/{mlflow_store['experiment_id']}/runs/{run_id}")
    dashboard.wait()
    driver.get(link.get_attribute("href"))
    WebDriverWait(driver, 60).until(
        lambda d: all(t in d.find_element(By.TAG_NAME, "body").text for t in ("unet", "val/miou", run_id)))
    screenshot(driver, "report-link-run-page")


def test_every_leaderboard_fits_a_1320_px_window(driver, report):
    """Params, commit and the MLflow link no longer hide behind a horizontal scrollbar."""
    driver.set_window_size(1320, 1000)
    try:
        _open(driver, report)
        tables = driver.execute_script(
            "return [...document.querySelectorAll('table.leaderboard')].map(t => [t.dataset.family, "
            "t.getBoundingClientRect().right, t.parentElement.scrollWidth - t.parentElement.clientWidth])")
        page = driver.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
        assert len(tables) >= 5 and page[1] <= page[0]
        assert [(family, right) for family, right, _ in tables if right > page[0]] == []
        assert [(family, scroll) for family, _, scroll in tables if scroll > 0] == []
        driver.execute_script("document.getElementById('family-adversarial').scrollIntoView()")
        screenshot(driver, "report-1320px-adversarial")
    finally:
        driver.set_window_size(1400, 1000)


def test_each_rl_environment_has_its_own_leaderboard(driver, report):
    from selenium.webdriver.common.by import By

    _open(driver, report)
    boards = {t.get_attribute("data-group"): [r.get_attribute("data-model")
                                              for r in t.find_elements(By.CSS_SELECTOR, "tbody tr")]
              for t in driver.find_elements(By.CSS_SELECTOR, "table.leaderboard[data-family='rl']")}
    assert boards == {"CartPole-v1": ["dqn"], "GridWorld-v0": ["q_learning"]}
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#family-rl h3.group")]
    assert headings == ["rl on CartPole-v1", "rl on GridWorld-v0"]
