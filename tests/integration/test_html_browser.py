"""The HTML report in a real browser: real runs against llama-server, rendered by
``--format html``, opened offline in headless Chromium (Debian's, driven by Playwright).

Every network request other than ``file://`` is blocked and recorded; the page must make
none, log no console error, and draw every chart with a real size. Full-page screenshots go
to ``$INFERMETER_ARTIFACTS`` (CI keeps them) or the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LATENCY = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")

# Text boxes of one chart that intersect (by more than a pixel each way), as the browser
# lays them out: overlapping labels are a rendering bug even when nothing raises.
OVERLAPS_JS = """
() => [...document.querySelectorAll('svg.chart')].flatMap((svg, i) => {
  const boxes = [...svg.querySelectorAll('text')]
    .filter(t => t.textContent.trim())
    .map(t => ({t: t.textContent, r: t.getBoundingClientRect()}));
  const out = [];
  for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++) {
    const p = boxes[a].r, q = boxes[b].r;
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 1 && h > 1) out.push([i, boxes[a].t, boxes[b].t]);
  }
  return out;
})
"""


def _chromium() -> Path:
    """The system's Chromium, installed on first use where this machine can (Debian's package,
    as root): the README's test command sets up everything it needs, so a fresh machine runs
    the browser check too instead of skipping it."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is not None and os.geteuid() == 0:
        with _install_lock():
            if not CHROMIUM.exists():
                print("installing Chromium (Debian's package) for the browser check", flush=True)
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                for cmd in ([apt, "update", "-q"], [apt, "install", "-y", "-q", "chromium"]):
                    subprocess.run(cmd, check=False, capture_output=True, env=env, timeout=900)
    if CHROMIUM.exists():
        return CHROMIUM
    pytest.fail(
        f"no Chromium at {CHROMIUM} and it could not be installed here: run "
        "'apt-get install chromium' (Debian, as root) and test again"
    )


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    import fcntl

    with open("/tmp/infermeter-chromium.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("INFERMETER_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_in_browser(page_file: Path, screenshot: Path) -> dict[str, Any]:
    """Load the page offline in headless Chromium; what it fetched, logged and drew."""
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []
    requested: list[str] = []
    errors: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1240, "height": 900})
            page.route("**/*", route)
            page.on("request", lambda req: requested.append(req.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri(), wait_until="load")
            boxes = page.eval_on_selector_all(
                "svg.chart",
                "els => els.map(e => { const r = e.getBoundingClientRect();"
                " return [r.width, r.height, e.querySelectorAll('*').length]; })",
            )
            overlaps = page.evaluate(OVERLAPS_JS)
            title = page.title()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {
        "blocked": blocked,
        "requested": requested,
        "errors": errors,
        "boxes": boxes,
        "overlaps": overlaps,
        "title": title,
    }


def _check_page(page_file: Path, screenshot: Path) -> dict[str, Any]:
    html = page_file.read_text(encoding="utf-8")
    seen = open_in_browser(page_file, screenshot)
    assert seen["blocked"] == [], f"the report tried to fetch {seen['blocked']}"
    assert all(u.startswith("file://") for u in seen["requested"]), seen["requested"]
    assert seen["errors"] == []
    assert len(seen["boxes"]) == html.count('<svg class="chart"') > 0
    for width, height, children in seen["boxes"]:
        assert width > 200 and height > 100 and children > 5
    assert seen["overlaps"] == [], f"overlapping chart text: {seen['overlaps'][:5]}"
    assert screenshot.stat().st_size > 10_000
    return seen


def _bench(server_url: str, out: Path, concurrency: int, n: int, *extra: str) -> Any:
    return run_cli(
        "bench",
        "--url",
        server_url,
        "--model",
        "tiny",
        "--concurrency",
        str(concurrency),
        "--num-requests",
        str(n),
        "--input-tokens",
        "48",
        "--output-tokens",
        "24",
        "--quiet",
        "--format",
        "html",
        "--out",
        str(out),
        *extra,
    )


def test_run_report_renders_offline_in_chromium(llama_server, tiny_model, tmp_path: Path) -> None:
    _chromium()
    out = tmp_path / "run"
    res = _bench(
        llama_server.url,
        out,
        4,
        40,
        "--warmup",
        "4",
        "--slo",
        "ttft_ms=5000,p95_e2e_ms=20000",
        "--profile",
        "chat",
        "--gpu",
        "h100",
        "--model-shape",
        str(tiny_model.hf_dir / "config.json"),
        "--gpu-hourly-price",
        "2.5",
    )
    assert res.returncode == 0, res.stderr
    assert "TTFT" in res.stdout  # the table summary is printed too
    page_file = out / "report.html"
    assert str(page_file) in res.stderr.replace("\n", "")
    size = page_file.stat().st_size
    assert 30_000 < size < 400_000

    seen = _check_page(page_file, _artifacts(tmp_path) / "report-run.png")
    # distributions (4 × histogram + CDF), latency/throughput/in-flight on the timeline,
    # host CPU, and the two speed-of-light charts
    assert len(seen["boxes"]) >= 8 + 3 + 1 + 2
    assert "tiny" in seen["title"]

    again = run_cli("report", str(out), "--format", "html", "--out", str(tmp_path / "r.html"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "r.html").stat().st_size > 30_000


def _point_entry(index: int, conc: int, run_dir: Path, limit_ms: float) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    dists = results["distributions"]
    latency = {k: {p: dists[k][p] for p in ("p50", "p90", "p95", "p99")} for k in LATENCY}
    return {
        "index": index,
        "dir": f"points/{run_dir.name}",
        "role": "point",
        "concurrency": conc,
        "rate": None,
        "input_tokens": "48",
        "output_tokens": "24",
        "status": "ok",
        "summary": results["summary"],
        "latency": latency,
        "meets_sla": latency["ttft_ms"]["p95"] <= limit_ms,
    }


def test_sweep_report_renders_offline_in_chromium(llama_server, tmp_path: Path) -> None:
    """A sweep directory made of real runs (the format 'infermeter sweep' writes)."""
    _chromium()
    sweep_dir = tmp_path / "sweep"
    levels = (1, 2, 4)
    for i, conc in enumerate(levels):
        res = _bench(llama_server.url, sweep_dir / "points" / f"{i:02d}-c{conc}", conc, 12)
        assert res.returncode == 0, res.stderr
    runs = sorted((sweep_dir / "points").iterdir())
    p95 = [
        json.loads((d / "results.json").read_text())["distributions"]["ttft_ms"]["p95"]
        for d in runs
    ]
    limit = round(1.05 * max(p95[:2]), 1)  # the two lowest loads pass on any machine
    points = [
        _point_entry(i, c, d, limit) for i, (c, d) in enumerate(zip(levels, runs, strict=True))
    ]
    first_fail = next((p["index"] for p in points if not p["meets_sla"]), None)
    passing = [
        p["index"]
        for p in points
        if p["meets_sla"] and (first_fail is None or p["index"] < first_fail)
    ]
    sweep = {
        "schema_version": 1,
        "kind": "sweep",
        "infermeter_version": "0.1.0",
        "started_at": "2026-01-02T03:04:05+00:00",
        "variable": "concurrency",
        "sla": {
            "source": "slo",
            "text": f"p95_ttft_ms={limit}",
            "limits": [{"metric": "ttft_ms", "percentile": 95, "max": limit}],
            "min_attainment": 0.9,
        },
        "points": points,
        "stopped": {"reason": None, "detail": None},
        "capacity": {
            "variable": "concurrency",
            "value": points[passing[-1]]["concurrency"],
            "pass_index": passing[-1],
            "fail_index": first_fail,
            "criterion": f"p95 ttft_ms <= {limit}",
        },
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(sweep))
    res = run_cli("report", str(sweep_dir), "--format", "html")
    assert res.returncode == 0, res.stderr
    page_file = sweep_dir / "report.html"
    html = page_file.read_text()
    for run in runs:  # each point links its own report
        assert f'href="points/{run.name}/report.html"' in html
    assert "within the SLA" in html and "capacity point" in html
    seen = _check_page(page_file, _artifacts(tmp_path) / "report-sweep.png")
    assert len(seen["boxes"]) == 6
