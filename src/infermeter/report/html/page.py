"""Page furniture of the HTML report: constants, CSS, small formatting helpers, the page shell."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from infermeter._version import __version__
from infermeter.metrics.catalogue import DISTRIBUTIONS, metric
from infermeter.report.charts import (
    CHART_CSS,
    esc,
    format_value,
)
from infermeter.report.labels import DEFINITION_GROUPS, DEFINITIONS
from infermeter.schema.results import Results

#: The id of the glossary every page ends with; a definition's anchor is ``def-KEY``.
GLOSSARY_ID = "definitions"

#: Most markers one scatter series draws (beyond it, every k-th request is drawn).
MAX_SCATTER_POINTS = 1500
#: Most markers that carry a hover tooltip (each costs ~60 bytes).
MAX_TOOLTIPS = 800
#: Most points of a CDF curve.
CDF_POINTS = 300
#: Width of full-width (timeline) and half-width charts, in SVG pixels.
WIDE = 1120
HALF = 560
#: Left margin of every timeline panel, so their time axes line up.
TL_LEFT = 72.0

PAGE_CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f6f8fb;--card:#fff;--accent:#2563eb;
--good:#15803d;--good-bg:#dcfce7;--bad:#b91c1c;--bad-bg:#fee2e2;--warn:#b45309;
--warn-bg:#fef3c7}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans",
"Liberation Sans",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 24px 56px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
header.top{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;
gap:8px 24px;
padding-bottom:16px;border-bottom:1px solid var(--line)}
.brand{font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;
color:var(--accent)}
h1{font-size:24px;line-height:1.25;margin:2px 0 0;font-weight:700;word-break:break-word}
h2{font-size:18px;margin:36px 0 14px;font-weight:650;display:flex;align-items:baseline;gap:12px}
h3{font-size:14px;margin:0;font-weight:600}
nav.toc{display:flex;flex-wrap:wrap;gap:6px}
nav.toc a{font-size:12.5px;padding:3px 10px;border:1px solid var(--line);border-radius:999px;
background:#fff;color:#334155}
nav.toc a:hover{border-color:var(--accent);color:var(--accent);text-decoration:none}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px 28px;
margin:18px 0 0}
dl.meta div{min-width:0}
dl.meta dt{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
dl.meta dd{margin:1px 0 0;font-weight:500;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:12px 16px 12px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
.card .k{font-size:12px;color:var(--muted);display:flex;justify-content:space-between;gap:6px}
.card .v{font-size:26px;font-weight:650;letter-spacing:-.01em;font-variant-numeric:tabular-nums;
line-height:1.3}
.card .v small{font-size:13px;font-weight:500;color:var(--muted);margin-left:3px}
.card .s{font-size:12.5px;color:var(--muted);font-variant-numeric:tabular-nums}
.card.bad{border-color:#fecaca;background:#fffafa}.card.bad .v{color:var(--bad)}
.card.good .v{color:var(--good)}
a.def{font-size:11.5px;font-weight:500;color:var(--muted);border-bottom:1px dotted #cbd5e1}
a.def:hover{color:var(--accent);text-decoration:none}
dl.defs{display:grid;grid-template-columns:minmax(150px,max-content) 1fr;gap:4px 18px;
margin:6px 0 14px;font-size:13px}
dl.defs dt{font-weight:600}dl.defs dd{margin:0;color:#334155}
dl.defs code{font-size:12.5px;background:#f1f5f9;border-radius:4px;padding:0 4px}
dl.defs :target{background:#fef9c3}h3:target{background:#fef9c3}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
.stack{display:grid;gap:16px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:14px 16px 12px;
margin:0;min-width:0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
.panel>.ph{display:flex;justify-content:space-between;align-items:baseline;gap:12px;
margin-bottom:6px}
.panel p.cap{margin:6px 0 0;font-size:12.5px;color:var(--muted)}
.stats{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12.5px;color:var(--muted);
margin:2px 0 8px;
font-variant-numeric:tabular-nums}
.stats b{color:var(--fg);font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th{font-size:11.5px;font-weight:600;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em;
background:#f8fafc}
th:first-child,td:first-child{text-align:left}
td.l,th.l{text-align:left}
tr:last-child td{border-bottom:none}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);
border-radius:12px}
tr.hl td{background:#eff6ff}
tr.group td{background:#f8fafc;font-weight:600;color:#334155;padding-top:10px}
th .raw{text-transform:none;letter-spacing:0;font-size:12.5px;color:#0f172a}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;
white-space:nowrap}
.pill.pass{background:var(--good-bg);color:var(--good)}
.pill.fail{background:var(--bad-bg);color:var(--bad)}
.pill.na{background:#f1f5f9;color:#475569}
.pill.warn{background:var(--warn-bg);color:var(--warn)}
.better{color:var(--good);font-weight:600}.worse{color:var(--bad);
font-weight:600}.same{color:var(--muted)}
.callout{border:1px solid var(--line);border-left:4px solid var(--muted);background:var(--card);
border-radius:8px;padding:10px 14px;margin:0 0 10px}
.callout.high{border-left-color:#dc2626}.callout.medium{border-left-color:#d97706}
.callout.low{border-left-color:#94a3b8}.callout.warn{border-left-color:#d97706;
background:#fffbeb}
.callout .t{font-weight:600;margin-right:6px}
.callout .ev{font-size:12px;color:var(--muted);margin-top:3px;font-variant-numeric:tabular-nums;
overflow-wrap:anywhere}
.note{color:var(--muted);font-size:13px;background:#f8fafc;border:1px dashed #cbd5e1;
border-radius:10px;
padding:12px 16px;margin:0 0 12px}
.bands{display:flex;height:22px;border-radius:6px;overflow:hidden;margin:8px 0 6px;
background:#f1f5f9}
.bands span{display:block;height:100%}
.legendrow{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;color:var(--muted)}
.sw{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
ul.plain{margin:6px 0 0;padding-left:18px}
footer{margin-top:44px;padding-top:14px;border-top:1px solid var(--line);font-size:12px;
color:var(--muted)}
@media (max-width:560px){main{padding:18px 12px 40px}.grid2{grid-template-columns:1fr}
h1{font-size:20px}}
@media print{body{background:#fff}.panel,.card,.tablewrap{box-shadow:none;break-inside:avoid}}
"""

#: No script, nothing fetched: the page may only use its own inline styles and data: images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

#: The distributions the report draws: name -> (title, axis label, what one count is).
DIST_TITLES: dict[str, tuple[str, str, str]] = {
    m.key: (m.chart.title, m.chart.axis, m.chart.counts) for m in DISTRIBUTIONS if m.chart
}
DIST_CAPTIONS: dict[str, str] = {
    name: f"{metric(name).formula}, over completed requests: {metric(name).meaning}."
    for name in DIST_TITLES
}
#: The latency metrics an SLA can limit and the sweep and compare pages chart, by short name.
METRIC_SHORT: dict[str, str] = {
    key: metric(key).short
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "ttft_incl_queue_ms")
}


# --------------------------------------------------------------------------------------
# small HTML helpers


def doc_link(key: str, text: str = "definition") -> str:
    """A link to a metric's definition (or a section of them) in the page's own glossary;
    hovering it shows the formula."""
    if key in DEFINITIONS:
        d = DEFINITIONS[key]
        hint = " — ".join(x for x in (d.formula, d.meaning) if x)
    else:
        hint = f"definitions: {DEFINITION_GROUPS[key][0].lower()}"
    return f'<a class="def" href="#def-{esc(key)}" title="{esc(hint)}">{esc(text)}</a>'


def glossary() -> str:
    """Every definition of the metric contract, grouped as docs/metrics.md is, each with
    the anchor the page's "definition" links point to."""
    groups = []
    for gkey, (title, keys) in DEFINITION_GROUPS.items():
        rows = []
        for key in keys:
            d = DEFINITIONS[key]
            formula = f"<code>{esc(d.formula)}</code> — " if d.formula else ""
            rows.append(
                f'<dt id="def-{esc(key)}">{esc(d.name)}</dt><dd>{formula}{esc(d.meaning)}</dd>'
            )
        groups.append(
            f'<h3 id="def-{esc(gkey)}">{esc(title)}</h3><dl class="defs">{"".join(rows)}</dl>'
        )
    return (
        f'<section id="{GLOSSARY_ID}"><h2>Definitions</h2><div class="panel">'
        + "".join(groups)
        + '<p class="cap">infermeter\'s metric contract (docs/metrics.md in its '
        "documentation), as this version computes it.</p></div></section>"
    )


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format_value(value, digits)
    return esc(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{format_value(value)} ms"


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f} %"


def _pill(
    passed: bool | None, yes: str = "pass", no: str = "fail", na: str = "not measured"
) -> str:
    if passed is None:
        return f'<span class="pill na">{esc(na)}</span>'
    return f'<span class="pill {"pass" if passed else "fail"}">{esc(yes if passed else no)}</span>'


def _section(sid: str, title: str, body: str, doc: str | None = None) -> str:
    link = doc_link(doc, "definitions") if doc else ""
    return f'<section id="{sid}"><h2>{esc(title)} {link}</h2>{body}</section>'


def _panel(title: str, content: str, caption: str = "", doc: str | None = None) -> str:
    link = doc_link(doc) if doc else ""
    cap = f'<p class="cap">{caption}</p>' if caption else ""
    return (
        f'<figure class="panel"><div class="ph"><h3>{esc(title)}</h3>{link}</div>'
        f"{content}{cap}</figure>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    classes: Sequence[str] = (),
    left: Sequence[int] = (0,),
) -> str:
    """A table from already-escaped cells; ``classes`` per row (e.g. 'hl'); the columns
    in ``left`` are left-aligned (numbers are right-aligned). A row of one cell spans the
    table (a group heading)."""
    cls = list(classes)

    def align(i: int) -> str:
        return ' class="l"' if i in left else ""

    ths = "".join(f"<th{align(i)}>{h}</th>" for i, h in enumerate(head))
    trs = []
    for i, row in enumerate(rows):
        c = f' class="{cls[i]}"' if i < len(cls) and cls[i] else ""
        if len(row) == 1 and len(head) > 1:
            trs.append(f'<tr{c}><td class="l" colspan="{len(head)}">{row[0]}</td></tr>')
            continue
        trs.append(
            f"<tr{c}>"
            + "".join(f"<td{align(j)}>{cell}</td>" for j, cell in enumerate(row))
            + "</tr>"
        )
    body = "".join(trs)
    return (
        f'<div class="tablewrap"><table><thead><tr>{ths}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _card(
    label: str, value: str, unit: str = "", sub: str = "", doc: str | None = None, tone: str = ""
) -> str:
    link = doc_link(doc, "def") if doc else ""
    u = f"<small>{esc(unit)}</small>" if unit and value != "–" else ""
    cls = f"card {tone}".strip()
    return (
        f'<div class="{cls}"><div class="k"><span>{esc(label)}</span>{link}</div>'
        f'<div class="v">{esc(value)}{u}</div><div class="s">{sub}</div></div>'
    )


def _meta(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in items if v)
    return f'<dl class="meta">{cells}</dl>'


def _date(iso: Any) -> str:
    if not iso:
        return ""
    try:
        when = _dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return esc(iso)
    tz = when.tzname() or ""
    return esc(when.strftime("%Y-%m-%d %H:%M:%S") + (f" {tz}" if tz else ""))


def _page(title: str, heading: str, kind: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    nav = [*nav, (GLOSSARY_ID, "Definitions")]
    links = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name in nav)
    toc = f'<nav class="toc">{links}</nav>' if links else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="infermeter {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}{CHART_CSS}</style></head>"
        f'<body><main><header class="top"><div><div class="brand">infermeter · {esc(kind)}</div>'
        f"<h1>{heading}</h1></div>{toc}</header>{body}{glossary()}"
        f"<footer>Generated by infermeter {esc(__version__)}. Every number follows the metric "
        f'contract, whose <a href="#{GLOSSARY_ID}">definitions</a> are above; percentiles '
        "interpolate linearly between order statistics. Charts are inline SVG: hover a point "
        "for its values.</footer></main></body></html>\n"
    )


def _dist(results: Results, name: str) -> dict[str, Any]:
    return dict(results["distributions"].get(name) or {})
