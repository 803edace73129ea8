"""The report as Markdown (``reports/index.md``): the same content as the HTML page, for terminals,
``git diff`` and Markdown viewers; images are relative links into ``reports/assets/``."""

from __future__ import annotations

import html
from urllib.parse import quote

from components.report import text
from components.report.collect import GROUP_FIELDS, FamilyReport, Report, Row, Sweep


def esc(value: object) -> str:
    """Text safe inside a Markdown table cell: no raw HTML, no cell breaks."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def url(target: str) -> str:
    return quote(target, safe=":/#?&=%@+,;~")


def link(label: str, target: str | None) -> str:
    return f"[{esc(label)}]({url(target)})" if target else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _row_cells(row: Row, family: FamilyReport, show_best: bool) -> list[str]:
    cells = [esc(row.model), text.number(row.value), esc(text.references(row.references))]
    if show_best:
        at = "" if row.best is None or row.best_at is None else f" @ {text.number(row.best_at, 'epochs')}"
        cells.append(text.number(row.best) + at)
    cells += [text.number(row.metrics.get(c), c) for c in family.extra_columns]
    shown, rest = text.key_params(row.key_params, row.tuned)
    more = f" (+{len(rest)} more)" if rest else ""
    cells += [text.number(row.train_wall_s, "train_wall_s"), esc(text.params_line(shown, row.tuned) + more),
              esc(row.params_hash), esc(text.commit(row.git_commit)),
              link("run", row.link.url) or esc(f"no link: {row.link.note}")]
    return cells


def leaderboard(family: FamilyReport) -> list[str]:
    if not family.rows:
        return ["No model of this family has a metrics file yet."]
    order = "lower" if family.lower_is_better else "higher"
    groups = family.groups
    split = f", one leaderboard per {' / '.join(GROUP_FIELDS)}" if len(groups) > 1 else ""
    lines = [f"Ranked by `{esc(family.headline)}` ({order} is better){split}."]
    for group, rows in groups.items():
        show_best = any(r.best is not None for r in rows)
        header = ["model", esc(family.headline), "reference",
                  *([f"best (@ {family.curve_x.replace('_', ' ')})"] if show_best else []),
                  *(esc(c) for c in family.extra_columns), "train time (s)", "key params", "params hash", "commit",
                  "MLflow"]
        if group:
            lines += ["", f"### {esc(family.name)} on {esc(group)}"]
        lines += ["", *_table(header, [_row_cells(r, family, show_best) for r in rows])]
        if family.curve_assets.get(group):
            lines += ["", f"![{esc(family.name)} learning curves]({url(family.curve_assets[group])})"]
    if family.shared_params:
        lines += ["", f"Params every model shares: {esc(text.params_line(family.shared_params))}."]
    return lines


def bucket_table(family: FamilyReport) -> list[str]:
    """BLEU / exact match per source-length bucket, one row per model; empty without buckets."""
    buckets = family.length_buckets()
    if not buckets:
        return []
    header = ["model", *(f"{esc(b.removeprefix('len_').replace('_', ' '))} BLEU / EM" for b in buckets)]
    rows = []
    for row in sorted(family.rows, key=lambda r: r.model):
        cells = [esc(row.model)]
        for b in buckets:
            bleu, em = row.metrics.get(f"test/bleu/{b}"), row.metrics.get(f"test/exact_match/{b}")
            cells.append("" if bleu is None else f"{bleu:.1f} / {100 * em:.0f}%" if em is not None else f"{bleu:.1f}")
        rows.append(cells)
    return ["", f"### {esc(family.name)}: test BLEU and exact match by source length", "", *_table(header, rows)]


def sweep_section(sweep: Sweep) -> list[str]:
    lines = ["", f"### Hyperparameter sweep ({esc(sweep.model or sweep.family)})", ""]
    if not sweep.enabled:
        return [*lines, f"The sweep of this family is disabled (`tune-{esc(sweep.family)}.json`: enabled false)."]
    lines.append(esc(text.sweep_summary(sweep)))
    if sweep.best_config:
        lines += ["", f"Best config: {esc(text.params_line(sweep.best_config))}."]
    lines += ["", f"MLflow parent run: {link('sweep', sweep.link.url) or esc('no link: ' + sweep.link.note)}"]
    if sweep.trials:
        rows = [[esc(t.trial_id), text.number(t.value), text.number(t.length, "epochs"),
                 "yes" if t.stopped_early else "no", esc(text.params_line(t.config))] for t in sweep.ranked_trials()]
        lines += ["", *_table(["trial", esc(sweep.metric), sweep.unit, "stopped early", "config"], rows)]
    return lines


def family_section(family: FamilyReport) -> list[str]:
    lines = ["", f"## {esc(family.title)}", "", *leaderboard(family)]
    if family.missing:
        lines += ["", f"Missing (no metrics file yet): {esc(', '.join(family.missing))}."]
    lines += bucket_table(family)
    if family.sweep is not None:
        lines += sweep_section(family.sweep)
    if family.figures:
        lines += ["", f"### {esc(family.name)}: figures"]
        for name, figures in family.figure_kinds().items():
            lines += ["", f"**{esc(name)}**", ""]
            lines += [f"![{esc(f.model)}: {esc(name)}]({url(f.asset)})" for f in figures]
    return lines


def render(report: Report) -> str:
    lines = ["# courselab report", "",
             "Every model's final metrics, best first within each family, with the reference points of its "
             "headline metric, its learning curves and figures. The HTML version of this page is `index.html`."]
    if report.missing:
        lines += ["", f"**Missing stages** ({len(report.missing)} of {len(report.expected)} expected have no "
                      f"metrics file): {esc(', '.join(report.missing))}."]
    store = report.store
    if store.problem:
        lines += ["", f"MLflow: no run links ({esc(store.problem)})."]
    else:
        lines += ["", f"MLflow run links open the dashboard at {esc(store.dashboard_url)} (`make dashboard`); "
                      f"runs looked up in `{esc(store.tracking_uri)}`."]
    commits = report.commits()
    dirty = [c for c in commits if c.endswith("-dirty")]
    if len(commits) > 1 or dirty:
        listing = "; ".join(f"{esc(text.commit(c))}: {len(rows)} rows" for c, rows in commits.items())
        lines += ["", f"**Mixed provenance**: the rows come from {len(commits)} commit(s)"
                      + (f", {len(dirty)} with uncommitted changes (-dirty)" if dirty else "")
                      + f"; rows of different code may not be comparable ({listing})."]
    if not report.families:
        lines += ["", f"No metrics files in {esc(report.sources['metrics'])}."]
    for family in report.families:
        lines += family_section(family)
    return "\n".join(lines) + "\n"
