"""PNG plots of robustness results: severity curves, corruption x severity heat maps, and an
mPC / rPC comparison across models. Matplotlib with the Agg backend (no display needed)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from .corruptions import CORRUPTION_GROUPS
from .results import cells_by_int_severity


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ordered_corruptions(cells) -> list[str]:
    names = [c for c in CORRUPTION_GROUPS["all"] if c in cells]
    return names + [c for c in cells if c not in names and c != "clean"]


def severity_curves(model, metric: str, path: Path) -> Path:
    """Performance vs severity (0 = clean) with one line per corruption."""
    plt = _pyplot()
    cells = cells_by_int_severity(model.results)
    clean = cells.get("clean", {}).get(0, {}).get(metric)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for corruption in _ordered_corruptions(cells):
        xs, ys = [], []
        if clean is not None:
            xs.append(0), ys.append(100 * clean / model.scale)
        for severity in range(1, 6):
            value = cells[corruption].get(severity, {}).get(metric)
            if value is not None:
                xs.append(severity), ys.append(100 * value / model.scale)
        style = "--" if corruption in CORRUPTION_GROUPS["holdout"] else "-"
        ax.plot(xs, ys, style, marker="o", markersize=3, label=corruption)
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{model.label}: {metric} vs severity", fontsize=10)
    ax.set_xticks(range(6))
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heat_map(model, metric: str, path: Path) -> Path:
    """Corruption x severity heat map of one model's metric (missing cells left blank)."""
    import numpy as np

    plt = _pyplot()
    cells = cells_by_int_severity(model.results)
    names = _ordered_corruptions(cells)
    grid = np.full((max(len(names), 1), 5), np.nan)
    for i, corruption in enumerate(names):
        for severity in range(1, 6):
            value = cells[corruption].get(severity, {}).get(metric)
            if value is not None:
                grid[i, severity - 1] = 100 * value / model.scale
    fig, ax = plt.subplots(figsize=(5, 0.32 * len(names) + 1.5))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_xticks(range(5), [str(s) for s in range(1, 6)])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("severity")
    ax.set_title(f"{model.label}: {metric} (%)", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def model_comparison(models: Sequence, task: str, metric: str, path: Path) -> Path:
    """Grouped bars of P and mPC per model, with rPC written above each pair."""
    import numpy as np

    plt = _pyplot()
    chosen = [m for m in models if m.task == task and metric in m.summaries]
    labels = [m.label for m in chosen]
    p = [100 * (m.summaries[metric].P or 0) / m.scale for m in chosen]
    mpc = [100 * (m.summaries[metric].mPC or 0) / m.scale for m in chosen]
    x = np.arange(len(chosen))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(chosen) + 2), 4))
    ax.bar(x - 0.2, p, 0.4, label="P (clean)")
    ax.bar(x + 0.2, mpc, 0.4, label="mPC")
    for xi, m in zip(x, chosen):
        rpc = m.summaries[metric].rPC
        if rpc is not None:
            ax.text(xi, max(p[xi], mpc[xi]) * 1.02, f"rPC {100 * rpc:.0f}%", ha="center", fontsize=7)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{task}: {metric}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(models: Sequence, out_dir: Path) -> list[Path]:
    """All plots of a report; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pairs = []
    for model in models:
        for metric in model.summaries:
            stem = _safe(f"{model.task}_{model.label}_{metric}")
            written.append(severity_curves(model, metric, out_dir / f"severity_{stem}.png"))
            written.append(heat_map(model, metric, out_dir / f"heatmap_{stem}.png"))
            if (model.task, metric) not in pairs:
                pairs.append((model.task, metric))
    for task, metric in pairs:
        written.append(model_comparison(models, task, metric, out_dir / f"compare_{_safe(task + '_' + metric)}.png"))
    return written


def robustness_transfer_scatter(points: Sequence[tuple[str, float, float]], x_label: str,
                                y_label: str, title: str, path: Path) -> Path:
    """Scatter of ImageNet robustness (x) against downstream robustness (y), one labelled point
    per backbone; the title carries the rank correlation computed by the caller."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, x, y in points:
        ax.scatter([x], [y], s=25)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
