"""The page's figures, embedded: PNG plots from :mod:`robust_transfer.plots` as ``data:``
URIs, and the corruption x severity heat map as a coloured HTML table (its numbers stay text,
so they can be read, copied and searched)."""
from __future__ import annotations

import base64
import io
from html import escape
from typing import Sequence

from .. import plots
from ..corruptions import CORRUPTION_GROUPS
from ..results import cells_by_int_severity
from ..tables import ScoreStyle, score_text
from .inputs import Entry
from .study_tables import MISSING


def png_data_uri(draw) -> str:
    """``draw(buffer)`` saves a PNG into a buffer; return it as a ``data:image/png`` URI."""
    buffer = io.BytesIO()
    draw(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def severity_curves_uri(entry: Entry) -> str:
    """The entry's tabled metric against severity, one line per corruption."""
    return png_data_uri(lambda buffer: plots.severity_curves(entry, entry.metric, buffer))


def scatter_uri(points: Sequence[tuple[str, float, float]], x_label: str, y_label: str,
                title: str) -> str:
    """Pre-training robustness (x) against downstream robustness (y), one point per backbone."""
    return png_data_uri(lambda buffer: plots.robustness_transfer_scatter(
        points, x_label, y_label, title, buffer))


def _colour(value: float | None, clean: float | None) -> str:
    # Hue from red (nothing left of the clean score) to green (all of it): the eye finds the
    # corruptions that hurt without reading a number.
    if value is None or not clean:
        return ""
    kept = max(0.0, min(1.0, value / clean))
    return f' style="background:hsl({120 * kept:.0f},65%,82%)"'


def heat_map_table(entry: Entry, metric: str | None = None) -> str:
    """Corruption x severity table of ``metric`` (default: the tabled one) in percent, each
    cell coloured by the share of the clean score it keeps; missing cells show "—"."""
    metric = metric or entry.metric
    cells = cells_by_int_severity(entry.results)
    clean = cells.get("clean", {}).get(0, {}).get(metric)
    names = [c for c in CORRUPTION_GROUPS["all"] if c in cells]
    names += [c for c in cells if c not in names and c != "clean"]
    head = "".join(f"<th>{s}</th>" for s in range(1, 6))
    rows = []
    for corruption in names:
        values = [cells[corruption].get(s, {}).get(metric) for s in range(1, 6)]
        present = [v for v in values if v is not None]
        mean = sum(present) / len(present) if present else None
        tds = "".join(f"<td{_colour(v, clean)}>{_pct(v, entry.scale)}</td>" for v in values + [mean])
        rows.append(f"<tr><th>{escape(corruption)}</th>{tds}</tr>")
    caption = f"{escape(metric)} (%) by corruption and severity; clean {_pct(clean, entry.scale)}"
    return (f'<table class="heat"><caption>{caption}</caption><thead><tr><th>corruption</th>'
            f"{head}<th>mean</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


#: The page's score texts: the tables' percent style, with the page's missing mark.
HTML_STYLE = ScoreStyle(missing=MISSING)


def _pct(value: float | None, scale: float) -> str:
    return score_text(value, scale, HTML_STYLE)
