"""The report as one static HTML page (``reports/index.html``): inline CSS, no script, nothing fetched
from the network; every image is a relative path into ``reports/assets/``, so the folder works when
opened from disk. Every value from a file goes through :func:`e` (text and attributes) or :func:`src`
(paths in URLs)."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from components.report import text
from components.report.collect import FamilyReport, Report, Row, Sweep
from components.report.runs import RunLink, RunStore

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
details summary { cursor: pointer; color: #3a6ea5; }
code { font-size: 12.5px; }
.nolink { color: #8a6d3b; font-size: 12.5px; }
.muted { color: #5f6b78; }
figure { margin: .6rem 0; }
figure.curve img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: .8rem; }
.gallery figure { border: 1px solid #e3e7ec; padding: .4rem; border-radius: 4px; }
.gallery img { width: 100%; height: auto; }
figcaption { font-size: 12.5px; color: #5f6b78; }
"""


def e(value: object) -> str:
    """Escape text for HTML content and attribute values."""
    return escape(str(value), quote=True)


def src(path: str) -> str:
    """A relative asset path as an attribute value: percent-encoded, then HTML-escaped."""
    return e(quote(path, safe="/"))


def num_cell(value: object, column: str = "", cls: str = "num") -> str:
    return f'<td class="{cls}">{e(text.number(value, column))}</td>'


def run_cell(link: RunLink, store: RunStore, label: str = "run") -> str:
    if link.url:
        return f'<a href="{e(link.url)}" target="_blank" rel="noopener">{e(label)}</a>'
    note = "store unavailable (see the note at the top)" if link.note == store.problem else link.note
    return f'<span class="nolink">no link: {e(note)}</span>'


def params_cell(row: Row) -> str:
    shown, rest = text.key_params(row.key_params, row.tuned)
    more = (f"<details><summary>+{len(rest)} more</summary>{e(text.params_line(rest))}</details>"
            if rest else "")
    return f'<td class="params">{e(text.params_line(shown, row.tuned))}{more}</td>'


def _row(row: Row, family: FamilyReport, show_best: bool, store: RunStore) -> str:
    cells = [f"<td>{e(row.model)}</td>",
             f'<td class="headline" data-metric="{e(family.headline)}">{e(text.number(row.value))}</td>',
             '<td class="reference">' + "<br>".join(e(text.reference(r)) for r in row.references) + "</td>"]
    if show_best:
        cells.append(num_cell(row.best))
    cells += [num_cell(row.metrics.get(c), c) for c in family.extra_columns]
    cells += [num_cell(row.train_wall_s, "train_wall_s"),
              params_cell(row),
              f"<td><code>{e(row.params_hash)}</code></td>",
              f'<td><code title="{e(row.git_commit)}">{e(text.commit(row.git_commit))}</code></td>',
              f"<td>{run_cell(row.link, store)}</td>"]
    return f'<tr data-model="{e(row.model)}" data-stage="{e(row.stage)}">' + "".join(cells) + "</tr>"


def leaderboard(family: FamilyReport, store: RunStore) -> str:
    if not family.rows:
        return '<p class="muted">No model of this family has a metrics file yet.</p>'
    show_best = any(r.best is not None for r in family.rows)
    header = ["model", family.headline, "reference", *(["best epoch"] if show_best else []),
              *family.extra_columns, "train time (s)", "key params", "params hash", "commit", "MLflow"]
    order = "lower" if family.lower_is_better else "higher"
    parts = [f"<p>Ranked by <code>{e(family.headline)}</code> ({order} is better).</p>",
             '<div class="table-wrap">',
             f'<table class="leaderboard" data-family="{e(family.name)}" data-headline="{e(family.headline)}">',
             "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>",
             *(_row(r, family, show_best, store) for r in family.rows),
             "</tbody></table></div>"]
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


def sweep_section(sweep: Sweep, store: RunStore) -> str:
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


def family_section(family: FamilyReport, store: RunStore) -> str:
    parts = [f'<section class="family" id="family-{e(family.name)}">', f"<h2>{e(family.title)}</h2>",
             leaderboard(family, store)]
    if family.missing:
        parts.append(f'<p class="note warn">Missing (no metrics file yet): {e(", ".join(family.missing))}</p>')
    if family.curve_asset:
        parts.append(f'<figure class="curve"><img src="{src(family.curve_asset)}" '
                     f'alt="{e(family.name)} learning curves"><figcaption>Learning curves from '
                     f"<code>plots/{e(family.name)}-*.csv</code></figcaption></figure>")
    parts.append(bucket_table(family))
    if family.sweep is not None:
        parts.append(sweep_section(family.sweep, store))
    if family.figures:
        parts.append(f"<h3>{e(family.name)}: figures</h3>")
        parts.append('<div class="gallery">')
        for figure in family.figures:
            parts.append(f'<figure><a href="{src(figure.asset)}"><img src="{src(figure.asset)}" '
                         f'alt="{e(figure.model)}: {e(figure.name)}"></a>'
                         f"<figcaption>{e(figure.model)}: {e(figure.name)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


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
    if not report.families:
        notes.append(f'<p class="muted">No metrics files in <code>{e(report.sources["metrics"])}</code>.</p>')
    nav = " ".join(f'<a href="#family-{e(f.name)}">{e(f.title)}</a>' for f in report.families)
    body = "\n".join(family_section(f, store) for f in report.families)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>courselab report</title>
<style>{STYLE}</style>
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
