"""The report page: one self-contained HTML file (inline CSS, inline SVG, inline JS).

Nothing is fetched from anywhere. The run table's rows travel as JSON inside the page
and a small script sorts, filters and pages them, so a big study stays one file of
bounded size (at most ``max_rows`` rows are embedded).
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["CSS", "SCRIPT", "page"]

CSS = """
:root { color-scheme: light dark; --line: rgba(128,128,128,0.35); --dim: 0.7; }
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 72em;
       padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.dim { opacity: var(--dim); }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 2px 8px; border-bottom: 1px solid var(--line); text-align: right; }
th { cursor: pointer; user-select: none; position: sticky; top: 0; background: Canvas; }
td.text, th.text { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plot { border: 1px solid var(--line); border-radius: 4px; padding: 4px; background: #fff; }
.plot svg { display: block; max-width: 100%; height: auto; }
pre { white-space: pre-wrap; font-size: 0.85em; border-left: 3px solid #d9534f;
      padding-left: 0.6em; }
.controls { margin: 0.5em 0; display: flex; gap: 0.8em; align-items: center; }
"""

SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('run-data').textContent);
  const columns = data.columns, rows = data.rows, pageSize = 50;
  let sortColumn = 0, ascending = true, page = 0, shown = rows;
  const body = document.querySelector('#run-table tbody');
  const filter = document.getElementById('run-filter');
  const status = document.getElementById('run-status');
  const info = document.getElementById('run-page');
  const statusAt = columns.indexOf('status');
  function compare(a, b) {
    const x = a[sortColumn], y = b[sortColumn];
    if (x === null) return 1; if (y === null) return -1;
    const order = x < y ? -1 : x > y ? 1 : 0;
    return ascending ? order : -order;
  }
  function update() {
    const text = filter.value.trim().toLowerCase();
    const wanted = status.value;
    shown = rows.filter(r => (!wanted || r[statusAt] === wanted) &&
      (!text || r.some(v => v !== null && String(v).toLowerCase().includes(text))));
    shown.sort(compare);
    page = Math.min(page, Math.max(0, Math.ceil(shown.length / pageSize) - 1));
    draw();
  }
  function draw() {
    const start = page * pageSize, slice = shown.slice(start, start + pageSize);
    body.replaceChildren(...slice.map(r => {
      const tr = document.createElement('tr');
      r.forEach((v, i) => {
        const td = document.createElement('td');
        td.textContent = v === null ? '' : String(v);
        if (typeof v === 'string') td.className = 'text';
        tr.appendChild(td);
      });
      return tr;
    }));
    const pages = Math.max(1, Math.ceil(shown.length / pageSize));
    info.textContent = 'page ' + (page + 1) + ' of ' + pages + ' (' + shown.length + ' runs)';
  }
  document.querySelectorAll('#run-table th').forEach((th, i) => th.addEventListener('click', () => {
    ascending = sortColumn === i ? !ascending : true; sortColumn = i; update();
  }));
  filter.addEventListener('input', () => { page = 0; update(); });
  status.addEventListener('change', () => { page = 0; update(); });
  document.getElementById('run-prev').addEventListener('click', () => {
    page = Math.max(0, page - 1); draw();
  });
  document.getElementById('run-next').addEventListener('click', () => {
    page = Math.min(Math.ceil(shown.length / pageSize) - 1, page + 1); draw();
  });
  update();
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def table(header: list[str], rows: list[list[Any]], *, text_columns: int = 1) -> str:
    """A plain HTML table (the first ``text_columns`` columns left-aligned)."""
    head = "".join(
        f"<th class='text'>{_e(h)}</th>" if i < text_columns else f"<th>{_e(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='text'>{_e(v)}</td>" if i < text_columns else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def run_table(columns: list[str], rows: list[list[Any]], total: int) -> str:
    """The sortable, filterable, paged run table with its rows as embedded JSON."""
    payload = json.dumps({"columns": columns, "rows": rows}, allow_nan=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # a string holding "</script>" cannot end the block
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    note = ""
    if total > len(rows):
        note = (
            f"<p class='dim'>The table holds the first {len(rows):,} of {total:,} runs; "
            "<code>pytraj runs FILE</code> or <code>pytraj export FILE -o runs.csv</code> "
            "give all of them.</p>"
        )
    return (
        "<div class='controls'><input id='run-filter' type='search' placeholder='filter runs'>"
        "<select id='run-status'><option value=''>any status</option>"
        "<option>completed</option><option>failed</option><option>pending</option></select>"
        "<button id='run-prev' type='button'>&larr;</button>"
        "<span id='run-page' class='dim'></span>"
        "<button id='run-next' type='button'>&rarr;</button></div>"
        f"{note}<table id='run-table'><thead><tr>{head}</tr></thead><tbody></tbody></table>"
        f"<script id='run-data' type='application/json'>{payload}</script>"
    )


def page(title: str, sections: list[str]) -> str:
    """The whole document."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        + "".join(sections)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
