"""Paper-shaped reports from results files: terminal, Markdown, LaTeX and CSV tables, plots.

Rows are models (backbone x transfer mode); for each (task, metric) the columns are P, mPC and
rPC, as in Yamada & Otani's tables. Scores are shown in percent (COCO AP 0.373 -> 37.3), rPC in
percent of P. Cells that were not evaluated are reported, never averaged in as zero.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .corruptions import CORRUPTION_GROUPS
from .metrics import (REPORT_GROUPS, Summary, corruption_error_for_dataset, scope_text,
                      summarize_document)
from .results import cells_by_int_severity, load_results
from .tables import PAPER, prc_table, score_text


@dataclass
class ModelSummary:
    """The summaries of one results file, one per headline metric."""

    results: Mapping
    summaries: dict[str, Summary]

    @property
    def label(self) -> str:
        """The model id, plus backbone and transfer mode where the id does not say them (several
        backbones can share one config, as in the smoke and demo suites)."""
        model = self.results["model"]
        parts = [p for p in (self.results.get("backbone"), self.results.get("transfer_mode"))
                 if p and p not in model]
        return f"{model} ({', '.join(parts)})" if parts else model

    @property
    def task(self) -> str:
        return self.results["task"]

    @property
    def scale(self) -> float:
        return float(self.results.get("metric_scale", 1.0))


def summarize_results(results: Mapping, corruptions: Iterable[str] | None = None) -> ModelSummary:
    """Summaries of every headline metric of a results document."""
    return ModelSummary(results, summarize_document(results, corruptions))


def _pct(value: float | None, scale: float) -> str:
    return score_text(value, scale, PAPER)


def _columns(models: Sequence[ModelSummary]) -> list[tuple[str, str]]:
    """(task, metric) column groups in first-seen order."""
    columns: list[tuple[str, str]] = []
    for model in models:
        for metric in model.summaries:
            if (model.task, metric) not in columns:
                columns.append((model.task, metric))
    return columns


def _row_key(model: ModelSummary) -> tuple[str, str]:
    return (model.results.get("backbone") or model.label, model.results.get("transfer_mode") or "")


def summary_table(models: Sequence[ModelSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paper-shaped table (rows: backbone x transfer mode; for each
    (task, metric) P, mPC and rPC, rendered by :func:`robust_transfer.tables.prc_table`)."""
    groups = [f"{task} {metric}" for task, metric in _columns(models)]
    scored: dict[tuple[str, str], dict] = {}
    for model in models:
        row = scored.setdefault(_row_key(model), {})
        for metric, summary in model.summaries.items():
            row[f"{model.task} {metric}"] = (summary, model.scale)
    rows = [(list(key), groups_of_row, []) for key, groups_of_row in scored.items()]
    return prc_table(["backbone", "transfer"], groups, rows)


def corruption_table(model: ModelSummary, metric: str) -> tuple[list[str], list[list[str]]]:
    """Per corruption x severity table of one model and metric (plus per-corruption mean)."""
    cells = cells_by_int_severity(model.results)
    header = ["corruption", "1", "2", "3", "4", "5", "mean"]
    rows = []
    names = [c for c in CORRUPTION_GROUPS["all"] if c in cells]
    names += [c for c in cells if c not in names and c != "clean"]
    for corruption in names:
        values = [cells[corruption].get(s, {}).get(metric) for s in range(1, 6)]
        present = [v for v in values if v is not None]
        mean = sum(present) / len(present) if present else None
        rows.append([corruption] + [_pct(v, model.scale) for v in values] + [_pct(mean, model.scale)])
    return header, rows


def terminal_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    """A terminaltables rendering."""
    from terminaltables import AsciiTable

    return AsciiTable([list(header)] + [list(r) for r in rows], title).table


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def latex_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A booktabs LaTeX table."""
    def esc(text: str) -> str:
        return (str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_")
                .replace("%", r"\%").replace("&", r"\&").replace("–", "--"))

    spec = "ll" + "r" * (len(header) - 2)
    out = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    out += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        out.append(rf"\caption{{{esc(caption)}}}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def long_rows(models: Sequence[ModelSummary]) -> list[list]:
    """One row per (model, corruption, severity, metric) with the raw value (RobustBench style)."""
    rows = []
    for model in models:
        r = model.results
        for corruption, by_severity in r["cells"].items():
            for severity, cell in sorted(by_severity.items(), key=lambda kv: int(kv[0])):
                for metric, value in cell.items():
                    rows.append([r["model"], r["task"], r.get("backbone"), r.get("transfer_mode"),
                                 r.get("dataset"), corruption, int(severity), metric, value])
    return rows


LONG_HEADER = ["model", "task", "backbone", "transfer_mode", "dataset", "corruption", "severity",
               "metric", "value"]


def transfer_correlation(models: Sequence[ModelSummary], imagenet_robustness: Mapping[str, float]
                         ) -> list[dict]:
    """Rank correlation between a per-backbone ImageNet robustness number and the downstream rPC.

    One entry per (task, metric, transfer mode) with at least two backbones that have both
    numbers: Spearman's rho and its p-value (scipy), and the points.
    """
    from scipy.stats import spearmanr

    groups: dict[tuple[str, str, str], list[tuple[str, float, float]]] = {}
    for model in models:
        backbone = model.results.get("backbone")
        if backbone not in imagenet_robustness:
            continue
        for metric, s in model.summaries.items():
            if s.rPC is not None:
                key = (model.task, metric, model.results.get("transfer_mode") or "")
                groups.setdefault(key, []).append((backbone, float(imagenet_robustness[backbone]), s.rPC))
    out = []
    for (task, metric, mode), points in groups.items():
        entry = {"task": task, "metric": metric, "transfer_mode": mode, "points": points,
                 "spearman_rho": None, "p_value": None}
        if len(points) >= 2:
            rho, p = spearmanr([p[1] for p in points], [p[2] for p in points])
            entry["spearman_rho"] = None if rho != rho else float(rho)  # NaN when a side is constant
            entry["p_value"] = None if p != p else float(p)
        out.append(entry)
    return out


def write_report(results_list: Sequence[Mapping], out_dir: str | Path, *, plots: bool = True,
                 corruptions: Iterable[str] | None = None, title: str = "Robustness transfer",
                 imagenet_robustness: Mapping[str, float] | None = None,
                 imagenet_metric: str = "ImageNet robustness") -> dict:
    """Write every table and plot of ``results_list`` under ``out_dir``; return their paths.

    ``imagenet_robustness`` maps backbone names to a number measured on ImageNet (e.g. the
    backbone's ImageNet-C rPC or mCE, named by ``imagenet_metric``); with it the report adds the
    rank correlation with the downstream rPC and a scatter plot per task, metric and mode.
    Also returns the terminal rendering of the summary table under ``"terminal"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [summarize_results(r, corruptions) for r in results_list]
    header, rows = summary_table(models)
    written: dict[str, object] = {}
    (out / "summary.md").write_text(f"# {title}\n\n" + markdown_table(header, rows)
                                    + "\n`*` = some cells were not evaluated; means are over the evaluated ones.\n"
                                    + _details_markdown(models))
    (out / "summary.tex").write_text(latex_table(header, rows, title))
    (out / "summary.csv").write_text(csv_text(header, rows))
    (out / "long.csv").write_text(csv_text(LONG_HEADER, long_rows(models)))
    (out / "summary.json").write_text(json.dumps(
        [{"model": m.label, "task": m.task, "backbone": m.results.get("backbone"),
          "transfer_mode": m.results.get("transfer_mode"),
          "summaries": {k: s.as_dict() for k, s in m.summaries.items()}} for m in models], indent=1))
    written.update({k: out / f"summary.{k}" for k in ("md", "tex", "csv", "json")})
    written["long_csv"] = out / "long.csv"
    correlations = transfer_correlation(models, imagenet_robustness or {})
    if correlations:
        corr_header = ["task", "metric", "transfer", "backbones", "Spearman rho", "p"]
        corr_rows = [[c["task"], c["metric"], c["transfer_mode"], str(len(c["points"])),
                      "–" if c["spearman_rho"] is None else f"{c['spearman_rho']:.2f}",
                      "–" if c["p_value"] is None else f"{c['p_value']:.3f}"] for c in correlations]
        (out / "transfer_correlation.md").write_text(
            f"# {imagenet_metric} vs downstream rPC\n\n" + markdown_table(corr_header, corr_rows))
        (out / "transfer_correlation.csv").write_text(csv_text(corr_header, corr_rows))
        (out / "transfer_correlation.json").write_text(json.dumps(correlations, indent=1))
        written["correlation"] = out / "transfer_correlation.md"
    if plots:
        from . import plots as plotting

        written["plots"] = plotting.write_plots(models, out / "plots")
        for c in correlations:
            rho = "n/a" if c["spearman_rho"] is None else f"{c['spearman_rho']:.2f}"
            name = plotting._safe(f"scatter_{c['task']}_{c['metric']}_{c['transfer_mode']}") + ".png"
            written["plots"].append(plotting.robustness_transfer_scatter(
                [(b, x, 100 * y) for b, x, y in c["points"]], imagenet_metric,
                f"{c['task']} {c['metric']} rPC (%)",
                f"{c['transfer_mode']}: Spearman rho = {rho}", out / "plots" / name))
    written["terminal"] = terminal_table(header, rows, title) + "\n" + scope_line(models)
    return written


def scope_line(models: Sequence[ModelSummary]) -> str:
    """Which corruptions and severities the tables' mPC covers, e.g. ``mPC over 15 corruptions
    x severity 1``: the study evaluated severity 1 only, the full benchmark 1-5."""
    scopes = sorted({scope_text(s) for model in models for s in model.summaries.values()})
    return "mPC over " + ("; ".join(scopes) if scopes else "no cells")


def _details_markdown(models: Sequence[ModelSummary]) -> str:
    parts = []
    for model in models:
        for metric, s in model.summaries.items():
            parts.append(f"\n## {model.label} — {metric}\n")
            groups = ", ".join(f"{g} {_pct(s.per_group[g], model.scale)}" for g in REPORT_GROUPS
                               if g in s.per_group)
            parts.append(f"P {_pct(s.P, model.scale)}, mPC {_pct(s.mPC, model.scale)}, "
                         f"rPC {_pct(s.rPC, 1.0)}%; per group: {groups or '–'}; "
                         f"mPC over {scope_text(s)}\n")
            if model.task == "classification":
                cells = cells_by_int_severity(model.results)
                label, error = corruption_error_for_dataset(cells, metric, model.results.get("dataset"),
                                                            model.scale)
                if error is not None:
                    parts.append(f"{label} {100 * error:.1f}%\n")
            if s.missing:
                parts.append(f"Missing cells: {', '.join(f'{c}@{v}' for c, v in s.missing)}\n")
            parts.append("\n" + markdown_table(*corruption_table(model, metric)))
    return "".join(parts)


def load_imagenet_robustness(path: str | Path) -> tuple[dict[str, float], str]:
    """Per-backbone ImageNet robustness numbers from a YAML or JSON file.

    Accepted shapes: a benchmark suite (``imagenet_metric`` and ``backbones: {name:
    {imagenet_robustness: value}}``), or ``{metric: NAME, values: {backbone: value}}``.
    """
    import yaml

    document = yaml.safe_load(Path(path).read_text())
    if isinstance(document, dict) and isinstance(document.get("backbones"), dict):
        values = {name: spec["imagenet_robustness"] for name, spec in document["backbones"].items()
                  if isinstance(spec, dict) and spec.get("imagenet_robustness") is not None}
        metric = document.get("imagenet_metric", "ImageNet robustness")
    elif isinstance(document, dict) and isinstance(document.get("values"), dict):
        values, metric = document["values"], document.get("metric", "ImageNet robustness")
    else:
        raise ValueError(f"{path}: expected a suite with 'backbones' or a mapping with 'values'")
    bad = [k for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"{path}: ImageNet robustness of {', '.join(bad)} is not a number")
    return {k: float(v) for k, v in values.items()}, str(metric)


def load_many(paths: Iterable[str | Path]) -> list[dict]:
    """Load several results files (each validated)."""
    return [load_results(p) for p in paths]
