"""The page's sections as HTML fragments: the study's tables, the sortable leaderboard, the
pre-training-vs-downstream correlation and one section per model. Every text from a results
file is escaped."""
from __future__ import annotations

from html import escape
from typing import Mapping, Sequence

from ..metrics import REPORT_GROUPS, scope_text
from ..tables import rpc_text, score_text
from . import figures
from .cards import corruption_error
from .inputs import Entry
from .study_tables import MISSING, Grid, Number, TaskTables, measures


def _td(number: Number) -> str:
    cls = ' class="missing" title="not evaluated"' if number.value is None else ""
    sort = "" if number.value is None else f"{number.value:.6g}"
    return f'<td{cls} data-sort="{sort}">{escape(number.text)}</td>'


def grid_table(grid: Grid, task: str) -> str:
    """One study table: backbones as columns, measures as rows."""
    head = "".join(f"<th>{escape(c)}</th>" for c in grid.columns)
    body = "".join(f"<tr><th>{escape(label)}</th>{''.join(_td(n) for n in numbers)}</tr>"
                   for label, numbers in grid.rows)
    return (f'<table class="study" data-task="{escape(task)}" data-mode="{escape(grid.title)}">'
            f"<caption>{escape(grid.title)}</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def study_section(tables: Sequence[TaskTables], notes: Sequence[str]) -> str:
    """Per task: the transfer modes side by side, then PRIME against no PRIME."""
    parts = ['<section id="study"><h2>Study tables</h2>',
             f"<p class=\"hint\">P, mPC in % of the metric's full scale; rPC = mPC / P in %. "
             f"{MISSING} = not evaluated (never counted as zero); * = some corruption cells "
             "missing, the mean is over the evaluated ones.</p>"]
    for table in tables:
        datasets = f" on {escape(', '.join(table.datasets))}" if table.datasets else ""
        parts.append(f"<h3>{escape(table.task)} — {escape(table.metric)}{datasets}</h3>")
        if table.scopes:  # the study evaluated severity 1 only: say which severities a mean covers
            parts.append(f'<p class="scope">mPC over {escape("; ".join(table.scopes))}</p>')
        grids = table.modes + table.prime
        parts.append('<div class="side">' + "".join(grid_table(g, table.task) for g in grids)
                     + "</div>")
    parts += [f'<p class="note">{escape(n)}</p>' for n in notes]
    return "".join(parts) + "</section>"


LEADERBOARD_COLUMNS = ("model", "task", "dataset", "backbone", "transfer", "metric", "P", "mPC",
                       "rPC", "mPC over", "missing cells")


def leaderboard_section(entries: Sequence[Entry]) -> str:
    """Every evaluated model in one table; a click on a header sorts by that column."""
    head = "".join(f'<th title="click to sort">{escape(c)}</th>' for c in LEADERBOARD_COLUMNS)
    rows = []
    # Opens by task, then the most robust (highest rPC) first; a click re-sorts.
    ranked = sorted(entries, key=lambda e: (e.task, -(e.headline.rPC or float("-inf"))))
    for entry in ranked:
        numbers = measures(entry)
        texts = [entry.task, entry.dataset or MISSING, entry.backbone, entry.mode or MISSING,
                 entry.metric]
        link = f'<td data-sort="{escape(entry.label)}"><a href="#{escape(entry.id)}">{escape(entry.label)}</a></td>'
        tds = "".join(f'<td data-sort="{escape(t)}">{escape(t)}</td>' for t in texts)
        tds += "".join(_td(numbers[m]) for m in ("P", "mPC", "rPC"))
        scope = scope_text(entry.headline)
        missing = len(entry.headline.missing)
        tds += f'<td data-sort="{escape(scope)}">{escape(scope)}</td>'
        tds += f'<td data-sort="{missing}">{missing}</td>'
        rows.append(f"<tr>{link}{tds}</tr>")
    return ('<section id="leaderboard"><h2>Leaderboard</h2><table class="sortable" '
            f'id="leaderboard-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table></section>")


def correlation_section(correlations: Sequence[Mapping], imagenet_metric: str,
                        with_plots: bool) -> str:
    """Spearman's rho between pre-training and downstream rPC, with a scatter per group."""
    parts = ['<section id="correlation"><h2>Pre-training vs downstream robustness</h2>']
    if not correlations:
        parts.append("<p>No per-backbone ImageNet robustness was given "
                     "(<code>--imagenet-robustness FILE</code>), or no backbone has one.</p>")
        return "".join(parts) + "</section>"
    rows = "".join(
        f"<tr><td>{escape(c['task'])}</td><td>{escape(c['metric'])}</td>"
        f"<td>{escape(c['transfer_mode'] or MISSING)}</td><td>{len(c['points'])}</td>"
        f"<td>{_fmt(c['spearman_rho'], '.2f')}</td><td>{_fmt(c['p_value'], '.3f')}</td></tr>"
        for c in correlations)
    parts.append(f'<table class="correlation"><thead><tr><th>task</th><th>metric</th>'
                 f"<th>transfer</th><th>backbones</th><th>Spearman rho</th><th>p</th></tr>"
                 f"</thead><tbody>{rows}</tbody></table>")
    if with_plots:
        for c in correlations:
            title = f"{c['task']} {c['transfer_mode']}: Spearman rho = {_fmt(c['spearman_rho'], '.2f')}"
            uri = figures.scatter_uri([(b, x, 100 * y) for b, x, y in c["points"]], imagenet_metric,
                                      f"{c['task']} {c['metric']} rPC (%)", title)
            parts.append(f'<img class="plot" alt="{escape(title)}" src="{uri}">')
    return "".join(parts) + "</section>"


def _fmt(value, spec: str) -> str:
    return MISSING if value is None else format(value, spec)


def _metrics_table(entry: Entry) -> str:
    groups = [g for g in REPORT_GROUPS if any(g in s.per_group for s in entry.summaries.values())]
    head = "".join(f"<th>{h}</th>" for h in ("metric", "P", "mPC", "rPC", *groups, "mPC over"))
    rows = []
    for metric, s in entry.summaries.items():
        pct = (lambda v: score_text(v, entry.scale, figures.HTML_STYLE))
        cells = [pct(s.P), pct(s.mPC) + ("" if s.complete else "*"),
                 rpc_text(s.rPC, figures.HTML_STYLE)]
        cells += [pct(s.per_group.get(g)) for g in groups] + [escape(scope_text(s))]
        rows.append(f"<tr><th>{escape(metric)}</th>{''.join(f'<td>{c}</td>' for c in cells)}</tr>")
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _facts(entry: Entry, card_href: str | None) -> str:
    r = entry.results
    versions = ", ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items())
    facts = [("task", entry.task), ("data set", r.get("dataset")), ("backbone", r.get("backbone")),
             ("transfer mode", r.get("transfer_mode")), ("config", r.get("config")),
             ("checkpoint", r.get("checkpoint")), ("checkpoint sha256", r.get("checkpoint_sha256")),
             ("seed", r.get("seed")), ("corruption backend", r.get("backend")),
             ("seed scheme", r.get("seed_scheme")), ("versions", versions),
             ("results file", entry.source)]
    items = "".join(f"<dt>{k}</dt><dd>{escape(MISSING if v in (None, '') else str(v))}</dd>"
                    for k, v in facts)
    if card_href:
        items += f'<dt>model card</dt><dd><a href="{escape(card_href)}">{escape(card_href)}</a></dd>'
    return f"<dl>{items}</dl>"


def model_section(entry: Entry, with_plots: bool, card_href: str | None) -> str:
    """One model: facts, every metric, the corruption error that fits its data, heat map,
    severity curves and missing cells."""
    parts = [f'<section class="model" id="{escape(entry.id)}"><h3>{escape(entry.label)}</h3>',
             _facts(entry, card_href), _metrics_table(entry)]
    error = corruption_error(entry)
    if error is not None:
        parts.append(f'<p class="mce">{escape(error["label"])}: {100 * error["value"]:.1f}%</p>')
    parts.append('<div class="side">' + figures.heat_map_table(entry))
    if with_plots:
        parts.append(f'<img class="plot" alt="{escape(entry.metric)} vs severity" '
                     f'src="{figures.severity_curves_uri(entry)}">')
    parts.append("</div>")
    missing = entry.headline.missing
    if missing:
        parts.append("<p class=\"note\">Missing cells: "
                     + escape(", ".join(f"{c}@{s}" for c, s in missing)) + "</p>")
    return "".join(parts) + "</section>"
