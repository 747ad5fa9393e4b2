"""The HTML document around the sections: inline CSS, a few lines of vanilla JS for the
sortable leaderboard, nothing fetched from the network."""
from __future__ import annotations

import os
import tempfile
from html import escape
from pathlib import Path
from typing import Sequence

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1.5em;color:#222}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.4em 0}
nav a{margin-right:1.2em}
table{border-collapse:collapse;margin:.5em 1.2em .8em 0}
th,td{border:1px solid #ccc;padding:2px 7px;text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#f3f3f3}
tbody th{text-align:left;font-weight:600}
caption{font-weight:600;text-align:left;padding:2px 0;white-space:nowrap}
td.missing{color:#999;text-align:center}
.side{display:flex;flex-wrap:wrap;align-items:flex-start}
table.sortable th{cursor:pointer}
table.sortable td:nth-child(-n+6){text-align:left}
.hint,.note{color:#555}
.model{border-top:1px solid #ddd;margin-top:1.5em}
dl{display:grid;grid-template-columns:max-content auto;gap:1px 1em;font-size:13px}
dt{color:#555}dd{margin:0;word-break:break-all}
img.plot{max-width:640px;margin:.5em 1em}
"""

#: Click a header to sort by that column; again to reverse. Empty values sort last.
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('data-order') !== 'asc';
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute('data-sort'), y = b.cells[column].getAttribute('data-sort');
        if (x === '' || y === '') { return (x === '') - (y === ''); }
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
      table.querySelectorAll('thead th').forEach(function (other) { other.removeAttribute('data-order'); });
      th.setAttribute('data-order', ascending ? 'asc' : 'desc');
    });
  });
});
"""

NAVIGATION = (("study", "Study tables"), ("leaderboard", "Leaderboard"),
              ("correlation", "Pre-training vs downstream"), ("models", "Models"))


def render_page(title: str, intro: str, sections: Sequence[str]) -> str:
    """The whole document: title, navigation, ``intro`` (HTML), then ``sections`` (HTML)."""
    nav = "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in NAVIGATION)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><nav>{nav}</nav>"
            f"{intro}{''.join(sections)}<script>{SORT_JS}</script></body></html>\n")


def write_page(html: str, path: str | Path) -> Path:
    """Write the page atomically (a reader never sees half a page); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the page from a web server
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
