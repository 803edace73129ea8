"""The report as one HTML page (``reports/index.html``): inline CSS, nothing fetched from the network;
every image and the charting library (``assets/plotly.min.js``, for the interactive charts of
:mod:`components.report.interactive`) are relative paths into ``reports/assets/``, so the folder works
when opened from disk. Every value from a file goes through :func:`e` (text and attributes) or
:func:`src` (paths in URLs); the charts' JSON is escaped where it is built."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from components.report import text
from components.report.collect import GROUP_FIELDS, FamilyReport, Report, Row, Sweep
from components.report.interactive import PLOTLY_ASSET
from components.report.runs import RunLink, RunStore

# Metric columns a leaderboard shows besides its headline (the descriptor's own first); the rest fold
# into each row's details, so a table fits a 1,320 px window.
MAX_COLUMNS = 8

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
       margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1400px; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.6rem; border-bottom: 2px solid #d7dde4; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; }
nav a { margin-right: 1rem; white-space: nowrap; }
.note { padding: .6rem .9rem; border-radius: 6px; margin: .8rem 0; background: #eef3f8; }
.warn { background: #fff4e0; border-left: 4px solid #e0a030; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0; font-size: 13.5px; }
th, td { border: 1px solid #d7dde4; padding: .3rem .55rem; vertical-align: top; text-align: left; }
th { background: #f3f5f8; font-weight: 600; }
td.num, td.headline { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.headline { font-weight: 700; background: #f7fbff; }
tbody tr:first-child td.headline { background: #e4f4e4; }
td.reference { font-size: 12.5px; white-space: nowrap; }
td.params { font-size: 12.5px; max-width: 26rem; }
table.leaderboard th { max-width: 5.5rem; font-size: 12px; }
table.leaderboard th, table.leaderboard td { padding: .3rem .4rem; }
table.leaderboard td.reference { white-space: normal; min-width: 6rem; max-width: 9rem; }
td.details { font-size: 12.5px; min-width: 7rem; max-width: 16rem; }
td.details .params { overflow-wrap: anywhere; margin: .2rem 0; }
h4.figure-kind { margin: 1rem 0 .3rem; font-family: ui-monospace, monospace; font-size: 13px; }
details summary { cursor: pointer; color: #3a6ea5; }
code { font-size: 12.5px; }
.nolink { color: #8a6d3b; font-size: 12.5px; }
.muted { color: #5f6b78; }
figure { margin: .6rem 0; }
figure.curve img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: .8rem; }
.gallery figure { border: 1px solid #e3e7ec; padding: .4rem; border-radius: 4px; }
.gallery img { width: 100%; height: auto; }
figure.curve .chart { width: 100%; max-width: 1240px; border: 1px solid #e3e7ec; }
figcaption { font-size: 12.5px; color: #5f6b78; }
"""


def e(value: object) -> str:
    """Escape text for HTML content and attribute values."""
    return escape(str(value), quote=True)


def src(path: str) -> str:
    """A relative asset path as an attribute value: percent-encoded, then HTML-escaped."""
    return e(quote(path, safe="/"))


def header(label: str) -> str:
    """A column heading that may wrap after ``/`` and ``_`` (``val/<wbr>mask_<wbr>map``), not mid-word."""
    return e(label).replace("/", "/<wbr>").replace("_", "_<wbr>")


def num_cell(value: object, column: str = "", cls: str = "num") -> str:
    return f'<td class="{cls}">{e(text.number(value, column))}</td>'


def run_cell(link: RunLink, store: RunStore, label: str = "run") -> str:
    if link.url:
        return f'<a href="{e(link.url)}" target="_blank" rel="noopener">{e(label)}</a>'
    note = "store unavailable (see the note at the top)" if link.note == store.problem else link.note
    return f'<span class="nolink">no link: {e(note)}</span>'


def details_cell(row: Row, store: RunStore, folded: list[str]) -> str:
    """The MLflow link, and folded away (they made tables wider than the page): the metrics of the
    ``folded`` columns, the row's params and its provenance."""
    shown, rest = text.key_params(row.key_params, row.tuned)
    params = text.params_line({**shown, **rest}, row.tuned) or "(the family's shared params)"
    metrics = ", ".join(f"{c} {text.number(row.metrics[c], c)}" for c in folded if c in row.metrics)
    summary = "metrics, params, commit" if metrics else "params, commit"
    return (f'<td class="details">{run_cell(row.link, store)}<details><summary>{summary}</summary>'
            + (f'<div class="params">{e(metrics)}</div>' if metrics else "")
            + f'<div class="params">{e(params)}</div>'
            f'<div>params hash <code>{e(row.params_hash)}</code></div>'
            f'<div>commit <code title="{e(row.git_commit)}">{e(text.commit(row.git_commit))}</code></div>'
            "</details></td>")


def best_cell(row: Row) -> str:
    """The best evaluation and where on the curve it came (``0.8123 @ 7``)."""
    at = "" if row.best_at is None else f" @ {text.number(row.best_at, 'epochs')}"
    return f'<td class="num">{e(text.number(row.best))}{e(at) if row.best is not None else ""}</td>'


def _row(row: Row, family: FamilyReport, show_best: bool, store: RunStore) -> str:
    shown, folded = family.extra_columns[:MAX_COLUMNS], family.extra_columns[MAX_COLUMNS:]
    cells = [f"<td>{e(row.model)}</td>",
             f'<td class="headline" data-metric="{e(family.headline)}">{e(text.number(row.value))}</td>',
             '<td class="reference">' + "<br>".join(e(text.reference(r)) for r in row.references) + "</td>"]
    if show_best:
        cells.append(best_cell(row))
    cells += [num_cell(row.metrics.get(c), c) for c in shown]
    cells += [num_cell(row.train_wall_s, "train_wall_s"), details_cell(row, store, folded)]
    return f'<tr data-model="{e(row.model)}" data-stage="{e(row.stage)}">' + "".join(cells) + "</tr>"


def board(family: FamilyReport, group: str, rows: list[Row], store: RunStore) -> str:
    """One leaderboard: the family's rows of one group (environment), best first, and their curves."""
    show_best = any(r.best is not None for r in rows)
    columns = ["model", family.headline, "reference",
               *([f"best (@ {family.curve_x.replace('_', ' ')})"] if show_best else []),
               *family.extra_columns[:MAX_COLUMNS], "train time (s)", "MLflow run"]
    parts = [f'<h3 class="group">{e(family.name)} on {e(group)}</h3>' if group else "",
             '<div class="table-wrap">',
             f'<table class="leaderboard" data-family="{e(family.name)}" data-headline="{e(family.headline)}" '
             f'data-group="{e(group)}">',
             "<thead><tr>" + "".join(f"<th>{header(h)}</th>" for h in columns) + "</tr></thead><tbody>",
             *(_row(r, family, show_best, store) for r in rows),
             "</tbody></table></div>"]
    asset, chart = family.curve_assets.get(group), family.charts.get(group)
    where = f" ({e(group)})" if group else ""
    caption = f"Learning curves{where} from <code>plots/{e(family.name)}-*.csv</code>"
    if chart:  # built by components.report.interactive: its JSON is escaped there
        parts.append(f'<figure class="curve">{chart}<figcaption>{caption}: hover a point for its model and '
                     f'values, drag to zoom, double-click to reset (<a href="{src(asset)}">PNG</a>)'
                     "</figcaption></figure>")
    elif asset:
        parts.append(f'<figure class="curve"><img src="{src(asset)}" alt="{e(family.name)} learning curves{where}">'
                     f"<figcaption>{caption}</figcaption></figure>")
    trend = family.history_charts.get(group)
    if trend:
        parts.append(f'<figure class="curve">{trend}<figcaption>{e(family.headline)} of every finished run of these '
                     "models in the MLflow store (reruns under other params or commits included), by start time: "
                     "hover for the commit and params hash</figcaption></figure>")
    return "\n".join(p for p in parts if p)


def leaderboard(family: FamilyReport, store: RunStore) -> str:
    if not family.rows:
        return '<p class="muted">No model of this family has a metrics file yet.</p>'
    order = "lower" if family.lower_is_better else "higher"
    groups = family.groups
    split = f", one leaderboard per {' / '.join(GROUP_FIELDS)}" if len(groups) > 1 else ""
    parts = [f"<p>Ranked by <code>{e(family.headline)}</code> ({order} is better){e(split)}.</p>",
             *(board(family, group, rows, store) for group, rows in groups.items())]
    if family.shared_params:
        parts.append(f'<p class="muted">Params every model shares: {e(text.params_line(family.shared_params))}.</p>')
    return "\n".join(parts)


def bucket_table(family: FamilyReport) -> str:
    buckets = family.length_buckets()
    if not buckets:
        return ""
    header = ["model", *(f"{b.removeprefix('len_').replace('_', ' ')} BLEU / EM" for b in buckets)]
    rows = []
    for row in sorted(family.rows, key=lambda r: r.model):
        cells = [f"<td>{e(row.model)}</td>"]
        for b in buckets:
            bleu, em = row.metrics.get(f"test/bleu/{b}"), row.metrics.get(f"test/exact_match/{b}")
            cell = "" if bleu is None else f"{bleu:.1f} / {100 * em:.0f}%" if em is not None else f"{bleu:.1f}"
            cells.append(f'<td class="num">{e(cell)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join([f"<h3>{e(family.name)}: test BLEU and exact match by source length</h3>",
                      '<div class="table-wrap"><table class="buckets">',
                      "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>",
                      *rows, "</tbody></table></div>"])


def sweep_section(sweep: Sweep, store: RunStore, chart: str | None = None) -> str:
    parts = [f'<section class="sweep" data-family="{e(sweep.family)}">',
             f"<h3>Hyperparameter sweep ({e(sweep.model or sweep.family)})</h3>"]
    if not sweep.enabled:
        parts.append(f'<p class="muted">The sweep of this family is disabled '
                     f"(<code>tune-{e(sweep.family)}.json</code>: enabled false).</p></section>")
        return "\n".join(parts)
    parts.append(f"<p>{e(text.sweep_summary(sweep))}</p>")
    if sweep.best_config:
        parts.append(f"<p>Best config: <code>{e(text.params_line(sweep.best_config))}</code></p>")
    parts.append(f"<p>MLflow parent run: {run_cell(sweep.link, store, 'sweep')}</p>")
    if chart:
        parts.append(f'<figure class="curve">{chart}<figcaption>Each trial\'s {e(sweep.metric)} against each '
                     "param searched (hover a trial for its id)</figcaption></figure>")
    if sweep.trials:
        header = ["trial", sweep.metric, sweep.unit, "stopped early", "config"]
        rows = [f'<tr data-trial="{e(t.trial_id)}"><td>{e(t.trial_id)}</td>{num_cell(t.value)}'
                f'{num_cell(t.length, "epochs")}<td>{"yes" if t.stopped_early else "no"}</td>'
                f'<td class="params">{e(text.params_line(t.config))}</td></tr>' for t in sweep.ranked_trials()]
        parts += ['<div class="table-wrap"><table class="trials">',
                  "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>",
                  *rows, "</tbody></table></div>"]
    parts.append("</section>")
    return "\n".join(parts)


def gallery(family: FamilyReport) -> str:
    """The figures grouped by kind (file name), each kind across the models: one figure scans across them."""
    parts = [f"<h3>{e(family.name)}: figures</h3>"]
    for name, figures in family.figure_kinds().items():
        parts.append(f'<h4 class="figure-kind">{e(name)}</h4><div class="gallery" data-kind="{e(name)}">')
        for figure in figures:
            parts.append(f'<figure><a href="{src(figure.asset)}"><img src="{src(figure.asset)}" '
                         f'alt="{e(figure.model)}: {e(figure.name)}"></a>'
                         f"<figcaption>{e(figure.model)}</figcaption></figure>")
        parts.append("</div>")
    return "\n".join(parts)


def family_section(family: FamilyReport, store: RunStore) -> str:
    parts = [f'<section class="family" id="family-{e(family.name)}">', f"<h2>{e(family.title)}</h2>",
             leaderboard(family, store)]
    if family.missing:
        parts.append(f'<p class="note warn">Missing (no metrics file yet): {e(", ".join(family.missing))}</p>')
    parts.append(bucket_table(family))
    if family.sweep is not None:
        parts.append(sweep_section(family.sweep, store, family.sweep_chart))
    if family.figures:
        parts.append(gallery(family))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def commits_note(report: Report) -> str:
    """A warning when the rows come from more than one commit or from a tree with uncommitted changes."""
    commits = report.commits()
    dirty = [c for c in commits if c.endswith("-dirty")]
    if len(commits) <= 1 and not dirty:
        return ""
    items = "".join(f"<li><code>{e(text.commit(c))}</code>: {len(rows)} rows "
                    f'<span class="muted">({e(", ".join(rows[:6]))}{", ..." if len(rows) > 6 else ""})</span></li>'
                    for c, rows in commits.items())
    why = (f"the rows come from {len(commits)} commits" if len(commits) > 1 else "one commit") + (
        f", {len(dirty)} of them with uncommitted changes (-dirty)" if dirty else "")
    return (f'<div class="note warn" id="commits-note"><strong>Mixed provenance</strong>: {e(why)}; rows of '
            f"different code may not be comparable (<code>dvc repro</code> reruns what changed)."
            f"<details><summary>rows per commit</summary><ul>{items}</ul></details></div>")


def render(report: Report) -> str:
    store = report.store
    notes = []
    if report.missing:
        items = "".join(f"<li><code>{e(stage)}</code></li>" for stage in report.missing)
        notes.append(f'<div class="note warn" id="missing-stages"><strong>Missing stages</strong>: '
                     f"{len(report.missing)} of {len(report.expected)} expected have no metrics file yet "
                     f"(<code>dvc repro</code> writes them).<ul>{items}</ul></div>")
    if store.problem:
        notes.append(f'<div class="note warn" id="mlflow-note">MLflow: no run links ({e(store.problem)}).</div>')
    else:
        notes.append(f'<div class="note" id="mlflow-note">MLflow run links open the dashboard at '
                     f'<a href="{e(store.dashboard_url)}">{e(store.dashboard_url)}</a> '
                     f"(start it with <code>make dashboard</code>); runs looked up in "
                     f"<code>{e(store.tracking_uri)}</code>.</div>")
    notes.append(commits_note(report))
    if not report.families:
        notes.append(f'<p class="muted">No metrics files in <code>{e(report.sources["metrics"])}</code>.</p>')
    nav = " ".join(f'<a href="#family-{e(f.name)}">{e(f.title)}</a>' for f in report.families)
    body = "\n".join(family_section(f, store) for f in report.families)
    charts = any(f.charts or f.sweep_chart or any(f.history_charts.values()) for f in report.families)
    plotly = f'\n<script src="{src(PLOTLY_ASSET)}"></script>' if charts else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>courselab report</title>
<style>{STYLE}</style>{plotly}
</head>
<body>
<header>
<h1>courselab report</h1>
<p class="muted">Every model's final metrics, best first within each family, with the reference points of its
headline metric, its learning curves and figures. Built from <code>{e(report.sources["metrics"])}/</code>,
<code>{e(report.sources["plots"])}/</code> and <code>{e(report.sources["figures"])}/</code>;
the Markdown version is <a href="index.md">index.md</a>.</p>
{"".join(notes)}
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
</body>
</html>
"""
