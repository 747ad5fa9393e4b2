"""One self-contained HTML page over any number of results files (several suites at once):
the study's tables, a sortable leaderboard, the pre-training-vs-downstream correlation and a
section per model, plus a JSON model card per model.

Front door: :func:`write_html_report`. Modules: ``inputs`` (files and folders to entries),
``study_tables`` (the tables as data), ``cards`` (model cards), ``figures`` (embedded plots and
the heat map), ``sections`` and ``page`` (HTML).
"""
from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .cards import write_cards
from .inputs import Entry, build_entries, expand_results_paths, load_documents
from .page import render_page, write_page
from .sections import correlation_section, leaderboard_section, model_section, study_section
from .study_tables import study_tables

__all__ = ["write_html_report", "expand_results_paths", "load_documents", "build_entries", "Entry"]


def write_html_report(documents: Sequence[tuple[Mapping, Path | None]], html_path: str | Path, *,
                      cards_dir: str | Path | None = None, metric: str | None = None,
                      corruptions: Iterable[str] | None = None, title: str = "Robustness transfer",
                      imagenet_robustness: Mapping[str, float] | None = None,
                      imagenet_metric: str = "ImageNet robustness", plots: bool = True) -> dict:
    """Write the page to ``html_path`` and a card per model to ``cards_dir`` (default: the
    ``cards`` folder next to the page).

    ``documents``: (results, source path) pairs, e.g. from :func:`load_documents`. ``metric``
    picks the tables' metric (default: each task's headline metric); ``corruptions`` the scope
    of mPC (default: the 15 benchmark corruptions). ``plots=False`` leaves out the PNG plots
    (the tables and heat maps stay). Returns ``{"html": path, "cards": [paths], "notes":
    [lines]}``, the notes naming results left out or shown once.
    """
    from ..report import transfer_correlation

    html_path = Path(html_path)
    entries, notes = build_entries(documents, metric, corruptions)
    if not entries:
        raise ValueError("nothing to report: no results hold the chosen metric")
    cards_dir = Path(cards_dir) if cards_dir is not None else html_path.parent / "cards"
    cards = write_cards(entries, cards_dir)
    tables, table_notes = study_tables(entries)
    tabled = {(e.task, e.metric) for e in entries}
    correlations = [c for c in transfer_correlation(entries, imagenet_robustness or {})
                    if (c["task"], c["metric"]) in tabled]
    card_base = os.path.relpath(cards_dir.resolve(), html_path.parent.resolve())
    models = ['<section id="models"><h2>Models</h2>'] + [
        model_section(e, plots, f"{card_base}/{e.id}.json") for e in entries] + ["</section>"]
    sections = [study_section(tables, notes + table_notes), leaderboard_section(entries),
                correlation_section(correlations, imagenet_metric, plots), *models]
    intro = (f'<p class="hint">{len(entries)} evaluated models from {len(documents)} results '
             f"files; tables by {escape(metric or 'each task’s headline metric')}.</p>")
    write_page(render_page(title, intro, sections), html_path)
    return {"html": html_path, "cards": cards, "notes": notes + table_notes}
