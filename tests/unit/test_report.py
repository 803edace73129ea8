"""The comparison report: what it collects from the stages' outputs and how it writes it."""

from __future__ import annotations

import json
import socket
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from components.config import parse_params
from components.metrics_files import write_stage_metrics
from components.report import html as html_page
from components.report import markdown
from components.report.build import write_report
from components.report.collect import collect, expected_stages, parse_sweep, split_params
from components.report.curves import CURVES
from components.report.runs import RunStore
from tests.conftest import REPO

METRICS = {
    "segmentation-unet": {"headline_metric": "val/miou", "val/miou": 0.8123456, "val/pixel_accuracy": 0.98,
                          "epochs": 5, "train_wall_s": 162.7, "params_hash": "9c27d32cdf70",
                          "git_commit": "3b4743cbe3619bcf8ac5f2c98657dd0a42f1de2f-dirty", "mlflow_run_id": "a" * 32},
    "segmentation-fcn": {"headline_metric": "val/miou", "val/miou": 0.61, "epochs": 3, "train_wall_s": 90.0,
                         "params_hash": "0123456789ab", "git_commit": "c" * 40, "mlflow_run_id": "b" * 32},
    "generative-dcgan": {"headline_metric": "val/fid_evaluator", "val/fid_evaluator": 19.16493,
                         "val/fid_evaluator_floor": 2.687, "val/fid_evaluator_untrained": 924.85,
                         "mlflow_run_id": "c" * 32},
    "generative-vae": {"headline_metric": "val/fid_evaluator", "val/fid_evaluator": 65.2,
                       "val/fid_evaluator_floor": 2.687, "mlflow_run_id": "d" * 32},
    "rl-dqn": {"headline_metric": "rl/greedy_return_mean", "rl/greedy_return_mean": 487.5,
               "rl/return_threshold": 475.0, "stage_wall_s": 70.2, "mlflow_run_id": "e" * 32},
}


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each leaderboard's headline cells."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headlines: dict[str, str] = {}  # "<family>-<model>" -> shown text
        self._family = self._model = None
        self._in_headline = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table" and "leaderboard" in (attrs.get("class") or ""):
            self._family = attrs["data-family"]
        elif tag == "tr" and "data-model" in attrs:
            self._model = attrs["data-model"]
        elif tag == "td" and attrs.get("class") == "headline":
            self._in_headline = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_headline = False
        elif tag == "table":
            self._family = None

    def handle_data(self, data):
        if self._in_headline:
            self.headlines[f"{self._family}-{self._model}"] = data


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def write_inputs(root: Path, metrics: dict[str, dict] = METRICS) -> dict[str, Path]:
    dirs = {name: root / name for name in ("metrics", "plots", "figures")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for name, data in metrics.items():
        write_stage_metrics(root, name, data)
    return dirs


def build(dirs: dict[str, Path], params=None, store: RunStore | None = None, root: Path | None = None):
    return collect(dirs["metrics"], dirs["plots"], dirs["figures"], params, store or RunStore(None), root)


class StubClient:
    """MlflowClient.get_run for a store holding ``runs`` ({run_id: experiment_id})."""

    def __init__(self, runs: dict[str, str]):
        self.runs = runs

    def get_experiment_by_name(self, name):  # the report's history of runs: none in this store
        return None

    def get_run(self, run_id):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        if run_id not in self.runs:  # as MLflow's stores say it
            raise MlflowException(f"Run '{run_id}' not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(info=SimpleNamespace(experiment_id=self.runs[run_id]),
                               data=SimpleNamespace(metrics={"best/val/miou": 0.85}))


def stub_store(runs: dict[str, str], dashboard: str = "http://127.0.0.1:5000") -> RunStore:
    store = RunStore("sqlite:///stub.db", dashboard)
    store._client = StubClient(runs)
    return store


def test_leaderboard_values_equal_the_metrics_files(tmp_path):
    report = build(write_inputs(tmp_path))
    shown = parse(html_page.render(report)).headlines
    assert set(shown) == set(METRICS)
    for name, data in METRICS.items():
        assert float(shown[name]) == pytest.approx(data[data["headline_metric"]], abs=5e-5), name
    page = markdown.render(report)
    assert "| unet | 0.8123 | ceiling 1 | 0.9800 | 5 | 162.7 |" in page
    # ranked best first; FID is lower-is-better
    assert page.index("| unet |") < page.index("| fcn |")
    assert page.index("| dcgan | 19.1649 | floor (real vs real) 2.687; untrained 924.9 |") < page.index("| vae |")
    assert "| dqn | 487.5000 | solved threshold 475 |" in page  # train time falls back to stage_wall_s
    assert "| 70.2 |" in page


def test_rows_carry_provenance_and_link_to_their_mlflow_runs(tmp_path):
    store = stub_store({"a" * 32: "7"}, dashboard="http://dash.example:5001/")
    report = build(write_inputs(tmp_path, {"segmentation-unet": METRICS["segmentation-unet"]}), store=store)
    row = report.families[0].rows[0]
    assert row.link.url == f"http://dash.example:5001/#/experiments/7/runs/{'a' * 32}"
    assert row.best == 0.85  # best/<headline> from the run
    page = html_page.render(report)
    assert f'href="http://dash.example:5001/#/experiments/7/runs/{"a" * 32}"' in page
    assert "3b4743cbe361-dirty" in page and "9c27d32cdf70" in page
    assert "| 3b4743cbe361-dirty |" in markdown.render(report)


def test_missing_store_degrades_to_no_link_with_a_note(tmp_path):
    absent = tmp_path / "nowhere" / "mlflow.db"
    store = RunStore(f"sqlite:///{absent}")
    report = build(write_inputs(tmp_path), store=store)
    assert all(r.link.url is None for f in report.families for r in f.rows)
    assert store.problem == f"MLflow store not found: sqlite:///{absent}"
    assert not absent.exists()  # looking did not create an empty store
    page = html_page.render(report)
    assert "no link: store unavailable" in page and "MLflow store not found" in page
    assert "<a href=\"http://127.0.0.1:5000/#" not in page
    assert "MLflow: no run links (MLflow store not found" in markdown.render(report)


def test_run_absent_from_the_store_has_no_link(tmp_path):
    store = stub_store({"a" * 32: "1"})
    report = build(write_inputs(tmp_path), store=store)
    links = {r.model: r.link for f in report.families for r in f.rows}
    assert links["unet"].url and links["fcn"].url is None
    assert links["fcn"].note == "run not in the MLflow store" and store.problem is None


def test_unreachable_tracking_server_is_one_quick_note(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RunStore(f"http://127.0.0.1:{port}")
    report = build(write_inputs(tmp_path), store=store)
    assert store.problem and f"127.0.0.1:{port}" in store.problem
    assert all(r.link.url is None for f in report.families for r in f.rows)


def test_missing_stages_are_listed(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = parse_params(raw)
    expected = expected_stages(params)
    assert expected["segmentation"]["unet"] == "train_segmentation@unet" and expected["rl"]["dqn"] == "rl@dqn"
    report = build(write_inputs(tmp_path, {"segmentation-unet": METRICS["segmentation-unet"]}), params=params)
    assert "train_segmentation@unet" not in report.missing
    assert {"train_segmentation@fcn", "train_detection@ssd", "evaluator", "rl@dqn"} <= set(report.missing)
    assert "train_detection@yolo" not in report.expected  # not in pipeline.detection: not expected
    assert len(report.missing) == len(report.expected) - 1
    page = html_page.render(report)
    assert 'id="missing-stages"' in page and "<code>rl@dqn</code>" in page
    assert f"{len(report.missing)} of {len(report.expected)} expected" in page
    assert "train_segmentation@fcn" in markdown.render(report)
    # key params: what sets the model apart within its family; the rest is listed once as shared
    family = report.families[0]
    assert family.rows[0].key_params["base_channels"] == raw["segmentation"]["models"]["unet"]["base_channels"]
    assert "lr_schedule" in family.shared_params and "lr_schedule" not in family.rows[0].key_params


def test_split_params_keeps_what_differs():
    own, shared = split_params({"a": {"lr": 1, "depth": 3, "wd": 0}, "b": {"lr": 2, "wd": 0}})
    assert shared == {"wd": 0}
    assert own == {"a": {"lr": 1, "depth": 3}, "b": {"lr": 2}}
    assert split_params({"only": {"lr": 1}}) == ({"only": {"lr": 1}}, {})


HOSTILE = '<img src=x onerror=alert(1)>"&'


def test_html_escapes_a_hostile_model_name(tmp_path):
    dirs = write_inputs(tmp_path, {f"segmentation-{HOSTILE}": {**METRICS["segmentation-unet"],
                                                               "git_commit": "<script>x</script>"}})
    figure_dir = dirs["figures"] / f"segmentation-{HOSTILE}"
    figure_dir.mkdir()
    (figure_dir / "masks.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = build(dirs)
    page = html_page.render(report)
    assert "<img src=x" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&amp;" in page
    elements = parse(page)
    assert not [a for _, attrs in elements.tags for a in attrs if a.startswith("on")]  # no event handlers
    assert {tag for tag, _ in elements.tags} <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "code", "a", "div",
        "ul", "li", "nav", "main", "section", "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
        "span", "br", "figure", "img", "figcaption", "strong", "h4", "wbr"}
    sources = [attrs["src"] for tag, attrs in elements.tags if tag == "img"]
    assert sources == ["assets/figures/segmentation-%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%26/masks.png"]
    md = markdown.render(report)
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md


def test_report_folder_is_self_contained(tmp_path):
    dirs = write_inputs(tmp_path)
    (dirs["plots"] / "segmentation-unet.csv").write_text("epoch,train/loss,val/miou\n1,0.9,\n2,0.5,0.7\n3,0.4,0.81\n")
    (dirs["plots"] / "rl-dqn.csv").write_text("")  # a run without rows draws no chart
    (dirs["figures"] / "segmentation-unet").mkdir()
    (dirs["figures"] / "segmentation-unet" / "masks.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    report = build(dirs)
    pages = write_report(report, tmp_path / "reports")
    out = tmp_path / "reports"
    assert (out / "assets" / "curves" / "segmentation.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "assets" / "curves" / "rl.png").exists()
    assert (out / "assets" / "figures" / "segmentation-unet" / "masks.png").read_bytes().endswith(b"fake")
    page = pages["html"].read_text()
    sources = [attrs["src"] for tag, attrs in parse(page).tags if tag == "img"]
    assert sources and all((out / s).is_file() for s in sources)
    assert "http" not in "".join(attrs.get("href", "") for tag, attrs in parse(page).tags if tag in ("link", "script"))
    assert "![segmentation learning curves](assets/curves/segmentation.png)" in pages["markdown"].read_text()


def test_a_stages_own_figures_are_shown_under_its_rows(tmp_path):
    row = {"test/deletion_auc": 0.1, "headline_metric": "test/deletion_auc", "params_hash": "h", "git_commit": "c"}
    dirs = write_inputs(tmp_path, {"visualization_attribution-rise": row})
    (dirs["figures"] / "visualization_attribution").mkdir()
    (dirs["figures"] / "visualization_attribution" / "scenes_pointing.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    pages = write_report(build(dirs), tmp_path / "reports")
    asset = "assets/figures/visualization_attribution/scenes_pointing.png"
    assert (tmp_path / "reports" / asset).read_bytes().endswith(b"fake")
    assert f"({asset})" in pages["markdown"].read_text() and f'src="{asset}"' in pages["html"].read_text()


def test_report_is_written_atomically(tmp_path, monkeypatch):
    dirs = write_inputs(tmp_path)
    out = tmp_path / "site" / "reports"
    write_report(build(dirs), out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(report):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(html_page, "render", broken)
    changed = {**METRICS["segmentation-fcn"], "val/miou": 0.99}
    write_stage_metrics(dirs["metrics"].parent, "segmentation-fcn", changed)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_report(build(dirs), out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the previous report, whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["reports"]  # no temporary folder left
    fresh = tmp_path / "fresh" / "reports"
    with pytest.raises(RuntimeError):
        write_report(build(dirs), fresh)
    assert not fresh.exists()  # nothing that looks like a report


def test_sweeps_enabled_and_disabled(tmp_path):
    store = stub_store({"p" * 32: "3"})
    sweep = parse_sweep({
        "family": "generative", "model": "dcgan", "metric": "val/fid_evaluator", "mode": "min", "enabled": True,
        "num_trials": 2, "num_stopped_early": 1, "best_value": 15.0, "best_config": {"lr_g": 0.001},
        "default_value": 19.0, "wall_s": 60.0, "parent_run_id": "p" * 32, "experiment_id": "3",
        "trials": [{"trial_id": "b", "config": {"lr_g": 0.01}, "value": 40.0, "epochs": 2, "stopped_early": True},
                   {"trial_id": "a", "config": {"lr_g": 0.001}, "value": 15.0, "epochs": 10, "stopped_early": False}],
    }, store)
    assert sweep.gain == 4.0  # lower is better: 4 below the default
    assert [t.trial_id for t in sweep.ranked_trials()] == ["a", "b"]
    assert sweep.link.url.endswith(f"/#/experiments/3/runs/{'p' * 32}")
    off = parse_sweep({"family": "detection", "model": "fcos", "enabled": False}, store)
    assert not off.enabled
    dirs = write_inputs(tmp_path, {"tune-detection": {"family": "detection", "model": "fcos", "enabled": False},
                                   "segmentation-unet": METRICS["segmentation-unet"]})
    report = build(dirs)
    assert [f.name for f in report.families] == ["segmentation", "detection"]  # tune-* is no family of its own
    assert "The sweep of this family is disabled" in html_page.render(report)


def test_curves_follow_dvc_yaml_plots():
    """Every chart of dvc.yaml's top-level plots: section is a panel of the report's family chart."""
    charts = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    for chart in charts:
        (spec,) = chart.values()
        for path, column in spec["y"].items():
            family = Path(path).stem.partition("-")[0]
            assert CURVES[family].x == spec["x"], path
            assert column in [p.y for p in CURVES[family].panels], path


def test_report_cli_with_partial_outputs(tmp_path, monkeypatch, capsys):
    from pipelines import report as stage

    write_inputs(tmp_path, {"segmentation-unet": METRICS["segmentation-unet"]})
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    stage.main(["--tracking-uri", f"sqlite:///{tmp_path / 'absent.db'}"])
    out = capsys.readouterr().out
    assert "1 models in 1 families" in out and "train_segmentation@fcn" in out and "no MLflow run links" in out
    assert (tmp_path / "reports" / "index.html").is_file() and (tmp_path / "reports" / "index.md").is_file()
    with pytest.raises(SystemExit) as exit_info:
        stage.main(["--out", "reports/index.md"])
    assert exit_info.value.code == 2


def test_key_params_include_the_sweeps_tuned_values(tmp_path):
    from components.tune.overrides import tuned_file_text, tuned_path

    params = parse_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    models = list(params.segmentation.models.model_dump())
    path = tuned_path(tmp_path, "segmentation")
    path.parent.mkdir()
    path.write_text(tuned_file_text(models, "unet", {"lr": 0.004, "trainer.batch_size": 4}, {"model": "unet"}))
    report = build(write_inputs(tmp_path, {k: v for k, v in METRICS.items() if k.startswith("segmentation")}),
                   params=params, root=tmp_path)
    rows = {r.model: r for r in report.families[0].rows}
    assert rows["unet"].key_params["lr"] == 0.004 and rows["unet"].key_params["trainer.batch_size"] == 4
    assert rows["unet"].tuned == {"lr", "trainer.batch_size"} and not rows["fcn"].tuned
    assert rows["fcn"].key_params["lr"] == params.segmentation.models.fcn.lr
    assert "lr=0.004 (tuned), trainer.batch_size=4 (tuned)" in html_page.render(report)


def test_a_model_without_a_finite_headline_ranks_last(tmp_path):
    metrics = {"segmentation-fcn": METRICS["segmentation-fcn"],
               "segmentation-broken": {"headline_metric": "val/miou", "val/miou": float("nan")},
               "segmentation-unet": METRICS["segmentation-unet"]}
    report = build(write_inputs(tmp_path, metrics))
    assert [r.model for r in report.families[0].rows] == ["unet", "fcn", "broken"]
    assert "| broken |  |" in markdown.render(report)


def test_each_environment_gets_its_own_leaderboard_and_chart(tmp_path):
    """CartPole's returns (~500) and the grid world's (~0.7) are ranked and drawn apart."""
    metrics = {
        "rl-dqn": {**METRICS["rl-dqn"], "env": "CartPole-v1"},
        "rl-reinforce": {**METRICS["rl-dqn"], "rl/greedy_return_mean": 96.5, "env": "CartPole-v1"},
        "rl-q_learning": {**METRICS["rl-dqn"], "rl/greedy_return_mean": 0.747, "env": "GridWorld-v0"},
    }
    dirs = write_inputs(tmp_path, metrics)
    for model, ret in (("dqn", 480.0), ("reinforce", 90.0), ("q_learning", 0.7)):
        (dirs["plots"] / f"rl-{model}.csv").write_text(f"env_steps,rl/episode_return_mean\n100,1\n200,{ret}\n")
    report = build(dirs)
    family = report.families[0]
    assert {group: [r.model for r in rows] for group, rows in family.groups.items()} == {
        "CartPole-v1": ["dqn", "reinforce"], "GridWorld-v0": ["q_learning"]}
    pages = write_report(report, tmp_path / "reports")
    out = tmp_path / "reports" / "assets" / "curves"
    assert sorted(p.name for p in out.iterdir()) == ["rl-CartPole-v1.png", "rl-GridWorld-v0.png"]
    tables = [attrs for tag, attrs in parse(pages["html"].read_text()).tags if tag == "table"]
    assert [t["data-group"] for t in tables] == ["CartPole-v1", "GridWorld-v0"]
    page = pages["markdown"].read_text()
    assert "### rl on CartPole-v1" in page and "### rl on GridWorld-v0" in page
    assert page.index("| reinforce |") < page.index("### rl on GridWorld-v0") < page.index("| q_learning |")


def test_best_column_says_where_on_the_curve_the_best_came(tmp_path):
    """The best value with its epoch (max for mIoU, min for FID), not the final value twice."""
    dirs = write_inputs(tmp_path, {k: METRICS[k] for k in ("segmentation-unet", "generative-dcgan")})
    (dirs["plots"] / "segmentation-unet.csv").write_text("epoch,val/miou\n1,0.5\n2,0.83\n3,0.83\n4,0.8123456\n")
    (dirs["plots"] / "generative-dcgan.csv").write_text("epoch,val/fid_evaluator\n1,90\n5,18.2\n10,19.16493\n")
    report = build(dirs)
    unet, dcgan = (family.rows[0] for family in report.families)
    assert (unet.best, unet.best_at) == (0.83, 2.0)  # the first of equals
    assert (dcgan.best, dcgan.best_at) == (18.2, 5.0)
    assert "0.8300 @ 2" in html_page.render(report) and "| 18.2000 @ 5 |" in markdown.render(report)


def test_rows_from_several_commits_or_a_dirty_tree_are_flagged(tmp_path):
    mixed = build(write_inputs(tmp_path / "mixed", {k: METRICS[k] for k in ("segmentation-unet", "segmentation-fcn")}))
    assert mixed.commits() == {METRICS["segmentation-unet"]["git_commit"]: ["segmentation-unet"],
                               METRICS["segmentation-fcn"]["git_commit"]: ["segmentation-fcn"]}
    assert 'id="commits-note"' in html_page.render(mixed) and "**Mixed provenance**" in markdown.render(mixed)
    clean = {k: {**METRICS[k], "git_commit": "c" * 40} for k in ("segmentation-unet", "segmentation-fcn")}
    same = build(write_inputs(tmp_path / "clean", clean))
    assert 'id="commits-note"' not in html_page.render(same) and "Mixed provenance" not in markdown.render(same)
    dirty = build(write_inputs(tmp_path / "dirty", {"segmentation-unet": METRICS["segmentation-unet"]}))
    assert "1 of them with uncommitted changes" in html_page.render(dirty)


def test_gallery_groups_one_kind_of_figure_across_models(tmp_path):
    dirs = write_inputs(tmp_path, {k: METRICS[k] for k in ("segmentation-unet", "segmentation-fcn")})
    for model in ("fcn", "unet"):
        for name in ("masks.png", "errors.png"):
            (dirs["figures"] / f"segmentation-{model}").mkdir(exist_ok=True)
            (dirs["figures"] / f"segmentation-{model}" / name).write_bytes(b"\x89PNG\r\n\x1a\nfake")
    family = build(dirs).families[0]
    assert {name: [f.model for f in figures] for name, figures in family.figure_kinds().items()} == {
        "errors.png": ["fcn", "unet"], "masks.png": ["fcn", "unet"]}
    page = html_page.render(build(dirs))
    assert page.index('data-kind="errors.png"') < page.index('data-kind="masks.png"')


def test_wide_families_fold_their_extra_columns_into_the_row(tmp_path):
    row = {"headline_metric": "val/robust_accuracy", "val/robust_accuracy": 0.7, "git_commit": "c" * 40,
           **{f"test/metric_{i}": i / 20 for i in range(12)}}
    dirs = write_inputs(tmp_path, {"adversarial-cnn": row})
    report = build(dirs)
    report.families[0].extra_columns = [f"test/metric_{i}" for i in range(12)]
    page = html_page.render(report)
    headers = page[page.index("<thead>"):page.index("</thead>")]
    assert headers.count("<th>") == 5 + html_page.MAX_COLUMNS  # model, headline, reference, time, run
    assert "test/metric_11 0.5500" in page  # folded into the row's details, not lost


def test_curve_axes_are_readable():
    """One epoch gets one whole-number tick, not 0.96-1.04; a log axis reads 2, 5, 10, not 2x10^0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from components.report.curves import readable_axes

    fig, (one, log) = plt.subplots(1, 2)
    one.plot([1], [0.5], marker="o")
    readable_axes(one, [1.0])
    assert list(one.get_xticks()) == [1.0]
    log.plot([1, 2, 3], [1.7, 2.5, 19.0])
    log.set_yscale("log")
    readable_axes(log, [1.0, 2.0, 3.0])
    fig.canvas.draw()
    labels = [t.get_text() for t in log.get_yticklabels() if t.get_text()]
    assert labels and all("times" not in t and "^" not in t for t in labels) and "10" in labels
    assert not [t.get_text() for t in log.get_yticklabels(minor=True) if t.get_text()]
    assert all(float(t).is_integer() for t in (x.get_text() for x in log.get_xticklabels()) if t)
    plt.close(fig)


def test_interactive_charts_cannot_be_broken_out_of(tmp_path):
    """A model name or sweep param that holds markup stays inside the chart's JSON string."""
    from components.report.interactive import curves_chart, sweep_chart

    hostile = "</script><script>alert(1)</script>"
    csv = tmp_path / "curve.csv"
    csv.write_text("epoch,val/miou\n1,0.5\n2,0.7\n")
    chart = curves_chart("segmentation", "val/miou", {hostile: csv}, "curves-x")
    assert chart.count("<script>") == 1 and chart.count("</script>") == 1 and "alert(1)" in chart
    payload = chart[chart.index("var f=") + 6:chart.index(";Plotly.newPlot")]
    figure = json.loads(payload)
    assert figure["data"][0]["name"] == hostile and figure["data"][0]["y"] == [0.5, 0.7]
    sweep = parse_sweep({"family": "segmentation", "model": "unet", "metric": "val/miou", "trials": [
        {"trial_id": hostile, "config": {"lr": 0.001, "norm": "batch"}, "value": 0.4, "epochs": 2},
        {"trial_id": "b", "config": {"lr": 0.1, "norm": "group"}, "value": 0.6, "epochs": 1, "stopped_early": True}]},
        RunStore(None))
    chart = sweep_chart(sweep, "sweep-x")
    figure = json.loads(chart[chart.index("var f=") + 6:chart.index(";Plotly.newPlot")])
    assert chart.count("</script>") == 1
    assert [t["name"] for t in figure["data"]] == ["ran its length", "stopped early"]  # lr only: norm is text
    assert figure["layout"]["xaxis"]["type"] == "log" and figure["layout"]["xaxis"]["title"]["text"] == "lr"


def test_a_sweeps_log_axis_has_no_overlapping_minor_labels():
    """The sweep figure's log-distributed params read 0.001, 0.002, 0.005 with no minor labels between."""
    from components.tune.figures import metric_vs_params

    trials = [{"trial_id": str(i), "config": {"lr": lr}, "value": 0.5 + i / 10, "stopped_early": False}
              for i, lr in enumerate((0.0011, 0.0015, 0.0022, 0.0031, 0.0046))]
    fig = metric_vs_params(trials, {"lr": "loguniform"}, "val/miou", "4", "0", "2 epochs")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert shown and all("^" not in t and "times" not in t for t in shown) and "0.002" in shown
