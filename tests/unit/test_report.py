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
        (dirs["metrics"] / f"{name}.json").write_text(json.dumps(data))
    return dirs


def build(dirs: dict[str, Path], params=None, store: RunStore | None = None, root: Path | None = None):
    return collect(dirs["metrics"], dirs["plots"], dirs["figures"], params, store or RunStore(None), root)


class StubClient:
    """MlflowClient.get_run for a store holding ``runs`` ({run_id: experiment_id})."""

    def __init__(self, runs: dict[str, str]):
        self.runs = runs

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
    assert {"train_segmentation@fcn", "train_detection@yolo", "evaluator", "rl@dqn"} <= set(report.missing)
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
        "span", "br", "figure", "img", "figcaption", "strong"}
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
    (dirs["metrics"] / "segmentation-fcn.json").write_text(json.dumps(changed))
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
