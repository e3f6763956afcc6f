"""The nightly report: Markdown plus an SVG plot, and report.html (html_report), rebuilt from the journal after every run."""

from __future__ import annotations

import time
from pathlib import Path

from runners.py import atomic, html_report, plot, provenance
from runners.py.corpus import Corpus
from runners.py.journal import Journal
from runners.py.summary import Summary

REPORT_MD = "report.md"
REPORT_SVG = "report.svg"
RECENT_RUNS = 40


def summarize(journal: Journal) -> tuple[Summary, dict, dict]:
    """The summary plus plot series: cases/hour per property, cumulative unique failures per property."""
    s = Summary()
    rate: dict[str, list[tuple[float, float]]] = {}
    found: dict[str, list[tuple[float, float]]] = {}
    for rec, run in journal.outcomes():
        end = rec.get("elapsed_before", 0.0) + run.seconds
        new = s.add(rec["index"], end, run, rec.get("interrupted", False))
        for p in run.properties:
            # Per hour of the run's wall time: a property that failed early did not run the whole run.
            if p.status != "skip" and run.seconds > 0:
                rate.setdefault(f"{run.target}/{p.id}", []).append((end / 3600, p.cases / run.seconds * 3600))
        for sig in new:
            f = s.failures[sig].first
            key = f"{f.target}/{f.property or 'all'}"
            pts = found.setdefault(key, [])
            pts.append((end / 3600, (pts[-1][1] if pts else 0) + 1))
    return s, rate, found


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(prov: dict) -> str:
    if not prov:
        return "- provenance: not recorded (campaign started by an older nightly)"
    return (f"- provenance: tdxhp {prov.get('tdxhp_version', '?')} (commit {prov.get('tdxhp_commit', '?')}), "
            f"host kernel {prov.get('host_kernel', '?')}")


def write(out_dir: Path, journal: Journal, corpus: Corpus, settings: dict, state: str) -> Path:
    s, rate, found = summarize(journal)
    budget = settings.get("budget_seconds", 0)
    hours = max(budget, s.seconds) / 3600
    atomic.write_text(out_dir / REPORT_SVG, plot.chart([
        dict(title="cases per hour of run time, per target/property (each point is one run)", y_label="cases/hour",
             series=rate, x_max=hours),
        dict(title="unique failures found over time, per target/property", y_label="unique failures",
             series=found, x_max=hours, step=True)]))

    cases, steps = s.totals
    lines = [
        "# tdxhp nightly report", "",
        f"- state: **{state}** (updated {time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        f"- budget: {_hms(s.seconds)} spent of {_hms(budget)}; runs: {s.runs} "
        f"(crashed {s.crashed}, hung {s.hung}, malformed output {s.malformed}, interrupted {s.interrupted})",
        f"- targets: {', '.join(settings.get('targets', []))}; properties: "
        f"{', '.join(settings.get('properties') or ['all in each run'])}; seconds per run: {settings.get('run_seconds')}",
        f"- tdxhp: `{settings.get('tdxhp_used', '?')}`; mutants: {', '.join(settings.get('mutants') or ['none'])}",
        _origin(settings.get("provenance", {})),
        *[f"- ran on {line}" for line in provenance.describe_runs([run.provenance for _, run in journal.outcomes()])],
        f"- totals: {cases} cases, {steps} steps, **{len(s.failures)} unique failures** "
        f"({sum(u.count for u in s.failures.values())} occurrences)", "",
        f"![cases per hour and failures over time]({REPORT_SVG})", "",
        "## Properties", "",
        "| target | property | invariants | runs | pass | fail | skip | cases | steps | cases/hour | unique failures |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (target, prop), t in sorted(s.properties.items()):
        lines.append(f"| {target} | {prop} | {' '.join(t.invariants)} | {t.runs} | {t.passed} | {t.failed} | "
                     f"{t.skipped} | {t.cases} | {t.steps} | {t.cases_per_hour:.0f} | {len(t.signatures)} |")
    skipped = [(k, t) for k, t in sorted(s.properties.items()) if t.skip_reasons]
    if skipped:
        lines += ["", "## Skipped (not counted as passes)", ""]
        lines += [f"- {k[0]}/{k[1]}: {'; '.join(sorted(t.skip_reasons))}" for k, t in skipped]
    lines += ["", "## Unique failures", ""]
    if not s.failures:
        lines.append("None found.")
    else:
        lines += ["| signature | kind | target | property | invariant | first seen | seen | kept case (ops) | message |",
                  "|---|---|---|---|---|---|---:|---|---|"]
        for sig, u in sorted(s.failures.items(), key=lambda kv: kv[1].first_run):
            name, length = corpus.entry(sig)
            case = f"[{name}](corpus/{name}) ({length if length is not None else '?'})" if name else "none saved"
            f = u.first
            lines.append(f"| `{_cell(sig)}` | {'/'.join(sorted(u.kinds))} | {f.target} | {f.property} | "
                         f"{f.invariant} | run {u.first_run}, {u.first_elapsed / 3600:.2f} h | {u.count} | {case} | "
                         f"{_cell(f.message)} |")
    if s.scenarios:
        lines += ["", "## Scenarios reached (cases tagged, summed over runs)", "",
                  ", ".join(f"{k}: {v}" for k, v in sorted(s.scenarios.items()))]
    lines += ["", f"## Runs (last {RECENT_RUNS})", "",
              "| run | target | property | seed | exit | verdict | cases | failures | seconds | note |",
              "|---:|---|---|---:|---:|---|---:|---:|---:|---|"]
    for rec, run in journal.outcomes()[-RECENT_RUNS:]:
        note = "; ".join(run.problems) + (" (interrupted, harvested on resume)" if rec.get("interrupted") else "")
        exit_text = run.signal or ("timeout" if run.timed_out else run.exit_code)
        lines.append(f"| {rec['index']} | {run.target} | {rec.get('property') or 'all'} | {run.seed} | {exit_text} | "
                     f"{run.verdict} | {sum(p.cases for p in run.properties)} | {len(run.failures)} | "
                     f"{run.seconds:.1f} | {_cell(note, 120)} |")
    path = out_dir / REPORT_MD
    atomic.write_text(path, "\n".join(lines) + "\n")
    html_report.write(out_dir, journal, corpus, settings, state, s)
    atomic.write_json(out_dir / "failures.json", {
        sig: {"kind": sorted(u.kinds), "target": u.first.target, "property": u.first.property,
              "invariant": u.first.invariant, "message": u.first.message, "first_run": u.first_run,
              "count": u.count, "case": corpus.entry(sig)[0], "case_ops": corpus.entry(sig)[1]}
        for sig, u in s.failures.items()})
    return path
