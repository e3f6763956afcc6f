"""report.html: the nightly report as one static page (no network, no script), rebuilt with report.md.

Plots come from Debian's python3-matplotlib and are inlined as SVG; without matplotlib the page
says so instead of showing them. Everything shown is read from the journal, the corpus, the runs'
results.json (provenance) and out/previous/failures.json (the campaign this one replaced).
"""

from __future__ import annotations

import io
import json
import re
import os
import subprocess
import sys
import time
from html import escape
from pathlib import Path

from runners.py import atomic
from runners.py.corpus import Corpus
from runners.py.describe import describe_config, describe_op
from runners.py.journal import Journal
from runners.py.summary import Summary

REPORT_HTML = "report.html"
CATALOG = "catalog.json"       # `tdxhp list --json`, cached: the SC-* and INV-* the report names
PLOTS = "report-plots.html"    # the last rendered plots, reused while a campaign runs
PLOT_EVERY_SECONDS = 60        # matplotlib takes ~0.5 s a figure: redraw at most this often while running
RECENT_RUNS = 40
_no_catalog: set[str] = set()  # binaries that could not list their catalog (asked once per process)

CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;
font-size:.9em;vertical-align:top}th{background:#f2f2f2}td.n{text-align:right}
.pass{background:#e3f4e3}.fail{background:#f9dada}.skip{background:#f4f0d9}.none{color:#999}
code,pre{background:#f6f6f6;font-size:.88em}pre{padding:6px;overflow-x:auto}
ol.steps li.bad{font-weight:bold;color:#a00}.failure{border:1px solid #e0b4b4;padding:.3em 1em;margin:1em 0}
.meta td:first-child{font-weight:bold}
"""


def _e(x) -> str:
    return escape(str(x), quote=True)


def catalog(out_dir: Path, settings: dict) -> dict:
    """tdxhp's catalog (properties, invariants, scenarios); {} when the binary cannot tell."""
    path = out_dir / CATALOG
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass
    binary = settings.get("tdxhp_used")
    if not binary or binary in _no_catalog:
        return {}
    try:
        r = subprocess.run([binary, "list", "--json"], capture_output=True, text=True, timeout=30)
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}
    if isinstance(doc, dict) and "scenarios" in doc:
        atomic.write_json(path, doc)
        return doc
    _no_catalog.add(binary)
    return {}


def provenance(out_dir: Path, journal: Journal) -> list[dict]:
    """Distinct (tdxhp version, commit, kernel, target) over the runs' results.json."""
    seen: dict[tuple, dict] = {}
    for rec in journal.records:
        p = out_dir / "runs" / f"{rec['index']:04d}" / "tdxhp" / "results.json"
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        prov = doc.get("provenance") if isinstance(doc, dict) else None
        if not isinstance(prov, dict):
            continue
        target = doc.get("target", "?")
        named = str(prov.get("target", ""))  # "kvm/swprot": the target as it named itself
        flavour = named.split("/", 1)[1] if "/" in named else \
            ("sim" if target == "sim" else flavour_named_in(target, doc))
        key = (prov.get("tdxhp_version"), prov.get("tdxhp_commit"), prov.get("kernel"), target, flavour,
               prov.get("tdx_module", "not recorded"))
        entry = seen.setdefault(key, {"version": key[0], "commit": key[1], "kernel": key[2], "target": target,
                                      "flavour": flavour, "tdx_module": key[5], "runs": 0})
        entry["runs"] += 1
    return list(seen.values())


def flavour_named_in(target: str, doc: dict) -> str:
    """A kvm run's flavour for results.json written before provenance named it: from
    --target kvm/<flavour>, else from results.json's own wording ("not checkable on kvm/swprot: ...")."""
    if target.startswith("kvm/"):
        return target[4:]
    found = sorted(set(re.findall(r"\bkvm/(plain|swprot|tdx)\b", json.dumps(doc))))
    return " or ".join(found) + " (from the skip reasons)" if found else "not recorded in results.json"


def previous_failures(out_dir: Path) -> dict | None:
    p = out_dir / "previous" / "failures.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _svg(fig) -> str:
    buf = io.StringIO()
    # No RDF metadata block: its namespace URLs are the page's only "http" text otherwise.
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Creator": None, "Date": None, "Format": None,
                                                                  "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]   # drop the XML prolog and doctype: inlined in HTML


def plots(journal: Journal, s: Summary, budget_seconds: float) -> tuple[str, str] | str:
    """(throughput svg, unique failures svg), or a sentence saying why there are none."""
    if os.environ.get("TDXHP_REPORT_NO_PLOTS") == "1":   # orchestration tests of other things
        return "Plots switched off (TDXHP_REPORT_NO_PLOTS=1)."
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return "Plots need Debian's python3-matplotlib (make deps installs it); it is not installed here."
    # The x axis spans the time spent (the budget's rest has no data); units chosen so ticks read plainly.
    span = max(s.seconds, 1.0)
    unit, div = (("seconds", 1.0) if span < 180 else ("minutes", 60.0) if span < 2 * 3600 else ("hours", 3600.0))
    xmax = span / div
    rate: dict[str, list[tuple[float, float]]] = {}
    found: dict[str, list[float]] = {}
    seen: set[str] = set()
    for rec, run in journal.outcomes():
        end = (rec.get("elapsed_before", 0.0) + run.seconds) / div
        cases = sum(p.cases for p in run.properties if p.status != "skip")
        if run.seconds > 0 and cases:
            rate.setdefault(run.target, []).append((end, cases / run.seconds))
        for f in run.failures:
            if f.signature not in seen:
                seen.add(f.signature)
                found.setdefault(f"{f.target}/{f.property or 'all'}", []).append(end)
    out = []
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name, pts in sorted(rate.items()):
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3, label=name)
    ax.set_xlim(0, xmax)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"campaign time ({unit}; each point is the end of one run)")
    ax.set_ylabel("cases per second\n(run's wall time)")
    ax.set_title(f"Throughput per run ({s.seconds / 60:.1f} of {budget_seconds / 60:.1f} budget minutes spent)")
    if rate:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no run with cases yet", transform=ax.transAxes, ha="center", color="#999")
    ax.grid(alpha=.3)
    out.append(_svg(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    total = sorted(x for xs in found.values() for x in xs)
    if total:
        ax.step([0] + total + [xmax], [0] + list(range(1, len(total) + 1)) + [len(total)], where="post",
                label="all", color="black", linewidth=2)
        for name, xs in sorted(found.items()):
            xs = sorted(xs)
            ax.step([0] + xs + [xmax], [0] + list(range(1, len(xs) + 1)) + [len(xs)], where="post", label=name)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    else:
        ax.plot([0, xmax], [0, 0], color="black", label="all")
        ax.text(0.5, 0.5, "no failure found", transform=ax.transAxes, ha="center", color="#999")
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, max(len(total), 1) + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"campaign time ({unit})")
    ax.set_ylabel("unique failures\n(cumulative)")
    ax.set_title("Unique failure signatures found over time")
    ax.grid(alpha=.3)
    out.append(_svg(fig))
    plt.close(fig)
    return out[0], out[1]


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = []
    for row in rows:
        cls, cells = "", row
        if row and isinstance(row[0], tuple):   # (css class, first cell)
            cls, cells = row[0][0], [row[0][1], *row[1:]]
        body.append(f'<tr class="{cls}">' + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells)) + "</tr>")
    return f"<table><tr>{h}</tr>{''.join(body)}</table>"


def export_refusal(case: dict) -> str:
    """Why `tdxhp export --c` cannot express the case on swprot ("" when it can): the vm smoke's
    rule (runners/vm/vmdrv/fixtures.py), the same one export_c.cpp applies."""
    vm_dir = str(Path(__file__).resolve().parents[1] / "vm")
    if vm_dir not in sys.path:
        sys.path.insert(0, vm_dir)
    from vmdrv.fixtures import swprot_refusal
    return swprot_refusal(case)


def _failure_section(out_dir: Path, corpus: Corpus, sig: str, u, invariants: dict) -> str:
    f = u.first
    name, length = corpus.entry(sig)
    inv = f"{_e(f.invariant)}" + (f" ({_e(invariants[f.invariant])})" if f.invariant in invariants else "")
    run_dir = f"runs/{u.first_run:04d}"
    logs = " · ".join(f'<a href="{run_dir}/{p}">{p}</a>' for p in ("stdout.txt", "stderr.txt", "tdxhp/results.json")
                      if (out_dir / run_dir / p).exists()) or "none kept"
    parts = [f'<div class="failure" id="{_e(sig)}"><h3><code>{_e(sig)}</code></h3><table class="meta">',
             f"<tr><td>invariant</td><td>{inv}</td></tr>",
             f"<tr><td>where</td><td>{_e(f.target)} / {_e(f.property or 'all')} ({_e('/'.join(sorted(u.kinds)))});"
             f" first in run {u.first_run} at {u.first_elapsed / 60:.1f} min, seen {u.count} time(s)</td></tr>",
             f"<tr><td>message</td><td>{_e(f.message)}</td></tr>",
             f"<tr><td>logs (run {u.first_run})</td><td>{logs}</td></tr>"]
    if name:
        parts.append(f'<tr><td>case</td><td><a href="corpus/{_e(name)}">corpus/{_e(name)}</a> '
                     f"({length if length is not None else '?'} ops)</td></tr></table>")
        try:
            doc = json.loads((corpus.root / name).read_text())
        except (OSError, ValueError):
            doc = {}
        ops = doc.get("ops") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and isinstance(ops, list):
            parts.append(f"<p>Shrunk case: {_e(describe_config(doc.get('config')))}</p><ol class='steps' start='0'>")
            for i, op in enumerate(ops):
                bad = ' class="bad"' if f.step == i else ""
                parts.append(f"<li{bad}>{_e(describe_op(op))}{' ← violation' if bad else ''}</li>")
            parts.append("</ol>")
        base = Path(name).stem
        why = export_refusal(doc) if isinstance(doc, dict) else "unreadable case"
        parts.append("<p>Reproduce (in this campaign's directory):</p><pre>"
                     f"tdxhp replay corpus/{_e(name)} --trace\n"
                     f"tdxhp export --c corpus/{_e(name)} -o {_e(base)}.c</pre>"
                     + (f"<p class='none'>Not a swprot reproducer: {_e(why)}. The export writes a TD "
                        f"reproducer instead, for the intel/tdx tree (compiled by tdxhp against stand-in "
                        f"headers, never run on a TDX host), or says why a TD cannot express it either.</p>"
                        if why else ""))
    else:
        parts.append("<tr><td>case</td><td>none saved (the run gave no case file)</td></tr></table>")
    parts.append("</div>")
    return "\n".join(parts)


def write(out_dir: Path, journal: Journal, corpus: Corpus, settings: dict, state: str, s: Summary) -> Path:
    cat = catalog(out_dir, settings)
    invariants = {i["id"]: i.get("summary", "") for i in cat.get("invariants", [])}
    budget = settings.get("budget_seconds", 0)
    cases, steps = s.totals
    h = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>tdxhp nightly report</title>"
         f"<style>{CSS}</style></head><body>", "<h1>tdxhp nightly report</h1>"]
    prov = provenance(out_dir, journal)
    prov_rows = [[_e(p["version"]), _e(p["commit"]), _e(p["kernel"]), _e(p["target"]), _e(p["flavour"]),
                  _e(p["tdx_module"]), str(p["runs"])]
                 for p in prov]
    seed = settings.get("seed")
    h.append("<table class='meta'>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in [
        ("state", f"{_e(state)} (updated {_e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))})"),
        ("budget", f"{s.seconds / 60:.1f} min spent of {budget / 60:.1f} min; {s.runs} runs (crashed {s.crashed}, "
                   f"hung {s.hung}, malformed output {s.malformed}, interrupted {s.interrupted})"),
        ("settings", f"targets {_e(', '.join(settings.get('targets') or []))}; properties "
                     f"{_e(', '.join(settings.get('properties') or ['all in each run']))}; "
                     f"{_e(settings.get('run_seconds'))} s per run; base seed "
                     f"{_e(seed) if seed is not None else 'none (random per run, see the runs table)'}"
                     + (f"; merged from {settings.get('shards')} shards" if settings.get("merged_from") else "")),
        ("mutants", _e(", ".join(settings.get("mutants") or ["none"]))),
        ("totals", f"{cases} cases, {steps} steps, <b>{len(s.failures)} unique failures</b> "
                   f"({sum(u.count for u in s.failures.values())} occurrences)")]) + "</table>")
    h.append("<h2>Provenance</h2>")
    h.append(_table(["tdxhp version", "commit", "kernel", "target", "flavour", "TDX module", "runs"], prov_rows, {6})
             if prov_rows else "<p class='none'>No run's results.json recorded provenance yet.</p>")

    prev = previous_failures(out_dir)
    h.append("<h2>Compared with the previous campaign</h2>")
    if prev is None:
        h.append("<p class='none'>No previous campaign in this directory (nightly --fresh or a repeated merge "
                 "keeps one under previous/).</p>")
    else:
        now = set(s.failures)
        groups = [("new", sorted(now - set(prev)), "fail"), ("still failing", sorted(now & set(prev)), "fail"),
                  ("gone", sorted(set(prev) - now), "pass")]
        rows = []
        for label, sigs, cls in groups:
            for sig in sigs:
                inv = (s.failures[sig].first.invariant if sig in s.failures else prev[sig].get("invariant", ""))
                link = f'<a href="#{_e(sig)}"><code>{_e(sig)}</code></a>' if sig in s.failures else f"<code>{_e(sig)}</code>"
                rows.append([(cls, _e(label)), link, _e(inv)])
        counts = ", ".join(f"{len(sigs)} {label}" for label, sigs, _ in groups)
        h.append(f"<p>{counts}.</p>" + (_table(["", "signature", "invariant"], rows) if rows else ""))

    h.append("<h2>Properties per target</h2>")
    rows = []
    for (target, prop), t in sorted(s.properties.items()):
        verdict = "fail" if t.failed or t.signatures else ("skip" if t.skipped == t.runs else "pass")
        rows.append([(verdict, _e(target)), _e(prop), _e(" ".join(t.invariants)), f"<b>{verdict}</b>", str(t.runs),
                     str(t.passed), str(t.failed), str(t.skipped), str(t.cases), str(t.steps),
                     str(len(t.signatures)), _e("; ".join(sorted(t.skip_reasons)))])
    h.append(_table(["target", "property", "invariants", "verdict", "runs", "pass", "fail", "skip", "cases", "steps",
                     "unique failures", "skip reasons (skips are never counted as passes)"], rows,
                    {4, 5, 6, 7, 8, 9, 10}) if rows else "<p class='none'>No run finished yet.</p>")

    h.append("<h2>Throughput and failures over time</h2>")
    cached = out_dir / PLOTS
    if state == "running" and cached.exists() and time.time() - cached.stat().st_mtime < PLOT_EVERY_SECONDS:
        h.append(cached.read_text())
    else:
        figs = plots(journal, s, budget)
        block = f"<div>{figs[0]}</div><div>{figs[1]}</div>" if isinstance(figs, tuple) else f"<p>{_e(figs)}</p>"
        atomic.write_text(cached, block)
        h.append(block)

    h.append(f"<h2>Unique failures ({len(s.failures)})</h2>")
    if not s.failures:
        h.append("<p>None found.</p>")
    for sig, u in sorted(s.failures.items(), key=lambda kv: kv[1].first_run):
        h.append(_failure_section(out_dir, corpus, sig, u, invariants))

    h.append("<h2>Scenario coverage (SC-*)</h2>")
    known = [(sc["id"], sc.get("summary", "")) for sc in cat.get("scenarios", [])]
    ids = [i for i, _ in known] + sorted(set(s.scenarios) - {i for i, _ in known})
    summaries = dict(known)
    if ids:
        reached = sum(1 for i in ids if s.scenarios.get(i))
        h.append(f"<p>{reached} of {len(ids)} scenario shapes reached; counts are cases tagged with the shape, "
                 f"summed over runs." + ("" if known else " (tdxhp's catalog was not available: only reached "
                                         "shapes are listed.)") + "</p>")
        h.append(_table(["scenario", "cases", "what"],
                        [[("pass" if s.scenarios.get(i) else "skip", _e(i)), str(s.scenarios.get(i, 0)),
                          _e(summaries.get(i, ""))] for i in ids], {1}))
    else:
        h.append("<p class='none'>No scenario reached yet.</p>")

    h.append(f"<h2>Runs (last {RECENT_RUNS})</h2>")
    rows = []
    for rec, run in journal.outcomes()[-RECENT_RUNS:]:
        note = "; ".join(run.problems) + (" (interrupted, harvested on resume)" if rec.get("interrupted") else "")
        exit_text = run.signal or ("timeout" if run.timed_out else run.exit_code)
        cls = {"pass": "pass", "fail": "fail", "skip": "skip"}.get(run.verdict, "fail")
        d = f"runs/{rec['index']:04d}"
        rows.append([(cls, f'<a href="{d}/stdout.txt">{rec["index"]}</a>'), _e(run.target),
                     _e(rec.get("property") or "all"), _e(run.seed), _e(exit_text), _e(run.verdict),
                     str(sum(p.cases for p in run.properties)), str(len(run.failures)), f"{run.seconds:.1f}", _e(note)])
    h.append(_table(["run", "target", "property", "seed", "exit", "verdict", "cases", "failures", "seconds", "note"],
                    rows, {0, 3, 6, 7, 8}) if rows else "<p class='none'>No run yet.</p>")
    h.append("</body></html>\n")
    path = out_dir / REPORT_HTML
    atomic.write_text(path, "\n".join(h))
    return path
