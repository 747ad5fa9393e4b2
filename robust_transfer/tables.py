"""The one renderer of P / mPC / rPC tables: the robustness tools' printed summary, the
``robust-transfer report`` / ``summary`` tables and the demo's tables all go through
:func:`prc_table` (and its cell formatter :func:`prc_cells`), so a score reads the same way
everywhere a style asks for it.

Two styles: :data:`PAPER` (scores in percent of the metric's full scale, COCO AP 0.373 -> 37.3,
one decimal, ``–`` when missing, ``*`` after an mPC that averages fewer cells than the grid has)
and :data:`TOOL` (the metric in its own units, as mmdet's robustness tool prints it: AP 0.373,
mIoU 41.23, rPC ``37.0%``, ``n/a`` when missing). rPC is always in percent of P.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from .metrics import Summary

PARTS = ("P", "mPC", "rPC")


@dataclass(frozen=True)
class ScoreStyle:
    """How one score is written.

    Attributes:
        percent: P and mPC in percent of the metric's full scale with one decimal; False: in
            the metric's own units (three decimals for fractions, two for percentages).
        missing: the text of a score that could not be computed (or a model not evaluated).
        rpc_suffix: written after rPC (which is always in percent of P, one decimal).
        flag_incomplete: ``*`` after an mPC computed from fewer cells than the grid has.
    """

    percent: bool = True
    missing: str = "–"
    rpc_suffix: str = ""
    flag_incomplete: bool = True


PAPER = ScoreStyle()
TOOL = ScoreStyle(percent=False, missing="n/a", rpc_suffix="%", flag_incomplete=False)


def score_text(value: float | None, scale: float, style: ScoreStyle = PAPER) -> str:
    """P or mPC of a metric whose full-scale value is ``scale`` (1 for AP, 100 for mIoU)."""
    if value is None:
        return style.missing
    if style.percent:
        return f"{100.0 * value / scale:.1f}"
    return f"{value:0.3f}" if scale == 1.0 else f"{value:0.2f}"


def rpc_text(value: float | None, style: ScoreStyle = PAPER) -> str:
    """rPC (a ratio) in percent."""
    return style.missing if value is None else f"{100.0 * value:.1f}{style.rpc_suffix}"


def prc_cells(summary: Summary | None, scale: float = 1.0, style: ScoreStyle = PAPER,
              parts: Sequence[str] = PARTS) -> list[str]:
    """The texts of ``parts`` (P, mPC, rPC) of one summary; all ``style.missing`` for None."""
    if summary is None:
        return [style.missing] * len(parts)
    cells = []
    for part in parts:
        value = getattr(summary, part)
        text = rpc_text(value, style) if part == "rPC" else score_text(value, scale, style)
        if part == "mPC" and style.flag_incomplete and value is not None and not summary.complete:
            text += "*"
        cells.append(text)
    return cells


def prc_header(groups: Sequence[str], parts: Sequence[str] = PARTS) -> list[str]:
    """``'<group> P'``, ``'<group> mPC'``, ... for each group (just the part for group ``''``)."""
    return [f"{group} {part}".strip() for group in groups for part in parts]


#: One table row: its label cells, the (summary, metric scale) of each group it has, and
#: cells appended after the scores.
Row = tuple[Sequence[str], Mapping[str, tuple[Summary | None, float]], Sequence[str]]


def prc_table(label_header: Sequence[str], groups: Sequence[str], rows: Sequence[Row], *,
              style: ScoreStyle = PAPER, parts: Sequence[str] = PARTS,
              extra_header: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a P / mPC / rPC table: the label columns, ``parts`` for each group
    (a group a row has no summary for is written missing), then the extra columns. Render it
    with :func:`robust_transfer.report.terminal_table` (or the Markdown / LaTeX / CSV writers)."""
    header = [*label_header, *prc_header(groups, parts), *extra_header]
    body = []
    for labels, scored, extras in rows:
        cells = [text for group in groups for text in prc_cells(*scored.get(group, (None, 1.0)), style, parts)]
        body.append([*labels, *cells, *extras])
    return header, body
