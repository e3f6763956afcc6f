"""Nightly fuzz campaign: loop `tdxhp run` with fresh seeds over targets and properties until the
time budget is spent; de-duplicate failures by signature, keep the shortest case per signature,
and rewrite the report after every run. `--out` on an existing campaign resumes it.

  /usr/bin/python3 -m runners.py.nightly --hours 8 --out out/nightly

Sharded: `--shard I/N --seed S` runs only the campaign's runs I, I+N, I+2N, ... (run k uses seed S+k
and the k-th target/property combination, as the unsharded campaign would); merge the N shard
directories with `python3 -m runners.py.merge --out DIR SHARD_DIR...`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `runners.py` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners.py import atomic, provenance, report  # noqa: E402
from runners.py.corpus import Corpus  # noqa: E402
from runners.py.invoke import (EXIT_INTERRUPTED, EXIT_USAGE, Invocation, OrchestrationError,  # noqa: E402
                               find_tdxhp, invoke, stop_on_sigterm)
from runners.py.journal import SETTINGS, Journal, load_settings, save_settings  # noqa: E402
from runners.py.results import RunOutcome, collect_run, failures_from_case_files  # noqa: E402

MIN_RUN_SECONDS = 1
MAX_UNREADABLE_IN_A_ROW = 5   # tdxhp that never writes readable results is broken, not a finding per run
HANG_GRACE_SECONDS = 120   # beyond twice the run budget, a tdxhp run counts as hung


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="nightly", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/nightly", help="campaign directory; an existing one is resumed")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--hours", type=float, help="total budget in hours (default 8)")
    budget.add_argument("--seconds", type=float, help="total budget in seconds")
    ap.add_argument("--target", action="append", dest="targets", help="sim|kvm, repeatable (default sim)")
    ap.add_argument("--property", action="append", dest="properties",
                    help="property id, repeatable; runs rotate over them (default: all in every run)")
    ap.add_argument("--run-seconds", type=int, help="budget of each tdxhp run (default 300)")
    ap.add_argument("--seed", type=int, help="base seed: run N uses seed+N (default: fresh random seeds)")
    ap.add_argument("--mutant", action="append", dest="mutants", help="sim mutant passed to every run")
    ap.add_argument("--tdxhp", help="tdxhp binary (default $TDXHP or build/runners/cli/tdxhp)")
    ap.add_argument("--max-runs", type=int, help="stop this session after N runs even with budget left")
    ap.add_argument("--shard", help="I/N: run only runs I, I+N, I+2N, ... of the campaign (needs --seed)")
    ap.add_argument("--fresh", action="store_true",
                    help="start a new campaign in --out; the old one moves to --out/previous (the report diffs against it)")
    return ap.parse_args(argv)


def parse_shard(text: str | None) -> list[int] | None:
    """"I/N" with 1 <= I <= N -> [I, N]; the message names --shard."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise OrchestrationError(f"--shard: expected I/N such as 2/4, got {text!r}")
    i, n = int(parts[0]), int(parts[1])
    if not 1 <= i <= n:
        raise OrchestrationError(f"--shard: I must be between 1 and N, got {text!r}")
    return [i, n]


def merge_settings(args, stored: dict | None) -> dict:
    """Stored settings of a resumed campaign, overridden by whatever was given again."""
    s = dict(stored or {"budget_seconds": 8 * 3600, "targets": ["sim"], "properties": None,
                        "run_seconds": 300, "seed": None, "mutants": [], "tdxhp": None})
    if args.hours is not None:
        s["budget_seconds"] = args.hours * 3600
    if args.seconds is not None:
        s["budget_seconds"] = args.seconds
    for key in ("targets", "properties", "run_seconds", "seed", "mutants", "tdxhp"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    shard = parse_shard(getattr(args, "shard", None))
    if stored and shard is not None and stored.get("shard") not in (None, shard):
        raise OrchestrationError(f"--shard {args.shard}: this campaign is shard {stored['shard'][0]}/{stored['shard'][1]}")
    if shard is not None:
        s["shard"] = shard
    if s.get("shard") and s["seed"] is None:
        raise OrchestrationError("--shard needs --seed: every shard derives its runs' seeds from the same base seed")
    if s["mutants"] and any(t != "sim" for t in s["targets"]):
        raise OrchestrationError("--mutant switches a sim mutant on: it cannot go with --target "
                                 + ", ".join(t for t in s["targets"] if t != "sim")
                                 + " (every such run would end in a usage error)")
    if s["budget_seconds"] <= 0 or s["run_seconds"] < MIN_RUN_SECONDS:
        raise OrchestrationError("budget and --run-seconds must be positive")
    return s


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Campaign:
    def __init__(self, out_dir: Path, settings: dict, binary: Path, max_runs: int | None = None):
        self.out_dir, self.settings, self.binary, self.max_runs = out_dir, settings, binary, max_runs
        self.journal = Journal(out_dir)
        self.corpus = Corpus(out_dir / "corpus")

    def next_index(self) -> int:
        """The next run of this campaign's slice: every run unsharded, runs I, I+N, ... in shard I/N."""
        index = self.journal.next_index
        shard = self.settings.get("shard")
        if shard:
            i, n = shard
            index += (i - index) % n
        return index

    def record(self, index: int, prop: str | None, outcome: RunOutcome, elapsed_before: float,
               started_at: float, interrupted: bool = False) -> dict:
        """Corpus first, then the journal line: a kill in between re-harvests, and offering is idempotent."""
        corpus = {f.signature: self.corpus.offer(f) for f in outcome.failures}
        rec = {"index": index, "property": prop, "elapsed_before": elapsed_before, "started_at": started_at,
               "interrupted": interrupted, "corpus": corpus, "outcome": outcome.to_dict()}
        self.journal.append(rec)
        return rec

    def write_report(self, state: str) -> Path:
        return report.write(self.out_dir, self.journal, self.corpus, self.settings, state)

    def harvest_interrupted(self) -> None:
        """Runs that started but never reached the journal (nightly killed): keep their partial results."""
        for started_file in sorted((self.out_dir / "runs").glob("*/started.json")):
            started = json.loads(started_file.read_text())
            if started["index"] in self.journal.indices():
                continue
            run_dir = started_file.parent
            last_write = max((p.stat().st_mtime for p in run_dir.rglob("*") if p.is_file()),
                             default=started["started_at"])
            inv = Invocation(started["label"], started["argv"], None, False,
                             max(0.0, last_write - started["started_at"]),
                             run_dir / "stdout.txt", run_dir / "stderr.txt")
            outcome = collect_run(inv, run_dir / "tdxhp", started["target"], started["seed"], started["property"])
            if outcome.verdict == "malformed":   # nothing readable: not tdxhp's fault, the run was cut short
                outcome.failures = []
                outcome.problems = ["interrupted before tdxhp wrote results"]
            # Failures saved after the last checkpoint (or still shrinking) are findings all the same.
            known = {f.case_file for f in outcome.failures if f.case_file}
            outcome.failures += [f for f in failures_from_case_files(run_dir / "tdxhp", started["target"])
                                 if f.case_file not in known]
            outcome.verdict = "interrupted"
            self.record(started["index"], started["property"], outcome, self.journal.spent_seconds,
                        started["started_at"], interrupted=True)
            print(f"nightly: harvested interrupted {started['label']}: "
                  f"{len(outcome.failures)} failure(s) kept", flush=True)

    def run(self) -> int:
        s = self.settings
        self.harvest_interrupted()
        self.write_report("running")
        combos = [(t, p) for t in s["targets"] for p in (s["properties"] or [None])]
        dropped: set = set()
        unreadable_in_a_row = 0
        session_runs = 0
        seen = {sig for _, run in self.journal.outcomes() for sig in (f.signature for f in run.failures)}
        print(f"nightly: {self.out_dir}: budget {_hms(s['budget_seconds'])}, already spent "
              f"{_hms(self.journal.spent_seconds)}, {len(seen)} unique failure(s) so far", flush=True)
        while True:
            elapsed = self.journal.spent_seconds
            remaining = s["budget_seconds"] - elapsed
            live = [c for c in combos if c not in dropped]
            if remaining < MIN_RUN_SECONDS or not live or session_runs == self.max_runs:
                break
            session_runs += 1
            index = self.next_index()
            target, prop = live[(index - 1) % len(live)]
            run_seconds = max(MIN_RUN_SECONDS, int(min(s["run_seconds"], remaining)))
            seed = s["seed"] + index if s["seed"] is not None else secrets.randbelow(2 ** 32)
            run_dir = self.out_dir / "runs" / f"{index:04d}"
            argv = ["run", "--target", target, "--seconds", str(run_seconds), "--seed", str(seed),
                    "--out", str(run_dir / "tdxhp"), "--json"]
            argv += ["--property", prop] if prop else []
            for m in s["mutants"]:
                argv += ["--mutant", m]
            label = f"run {index} ({target}, {prop or 'all properties'}, seed {seed})"
            started_at = time.time()
            atomic.write_json(run_dir / "started.json", {
                "index": index, "label": label, "target": target, "property": prop, "seed": seed,
                "argv": [str(self.binary), *argv], "started_at": started_at})
            try:
                inv = invoke(self.binary, argv, label, run_dir, timeout=2 * run_seconds + HANG_GRACE_SECONDS)
            except KeyboardInterrupt:
                self.harvest_interrupted()
                self.write_report("interrupted")
                print(f"nightly: interrupted during {label}; partial results kept, "
                      f"resume with --out {self.out_dir}", file=sys.stderr, flush=True)
                return EXIT_INTERRUPTED
            if inv.returncode == EXIT_USAGE:
                outcome = RunOutcome(label, target, seed, EXIT_USAGE, seconds=round(inv.seconds, 3),
                                     verdict="usage-error", problems=[inv.stderr_tail(4)])
                self.record(index, prop, outcome, elapsed, started_at)
                self.write_report("stopped: tdxhp usage error")
                raise OrchestrationError(f"{label}: tdxhp rejected its arguments (exit 2): {inv.stderr_tail(6)}\n"
                                         f"command: {' '.join(inv.argv)}")
            outcome = collect_run(inv, run_dir / "tdxhp", target, seed, prop)
            rec = self.record(index, prop, outcome, elapsed, started_at)
            self.write_report("running")
            new = [sig for sig in rec["corpus"] if sig not in seen]
            seen.update(rec["corpus"])
            self._progress(index, target, prop, outcome, new, len(seen))
            unreadable_in_a_row = unreadable_in_a_row + 1 if outcome.verdict in ("malformed", "error") else 0
            if unreadable_in_a_row >= MAX_UNREADABLE_IN_A_ROW:
                self.write_report("stopped: tdxhp output unreadable")
                raise OrchestrationError(f"stopping: the last {unreadable_in_a_row} runs gave no readable results; "
                                         f"latest: {outcome.problems[-1] if outcome.problems else '?'}")
            if outcome.all_skipped:
                dropped.add((target, prop))
                reasons = sorted({p.reason for p in outcome.properties if p.reason})
                print(f"nightly: {target}/{prop or 'all'}: everything skipped ({'; '.join(reasons) or 'no reason given'})"
                      f"; not scheduled again this session", flush=True)
        state = "finished" if self.journal.spent_seconds >= s["budget_seconds"] - MIN_RUN_SECONDS else "stopped"
        path = self.write_report(state)
        print(f"nightly: {state}: {len(seen)} unique failure(s); report {path}", flush=True)
        if seen:
            return 1
        ran_any = any(p.status != "skip" for _, run in self.journal.outcomes() for p in run.properties)
        return 0 if ran_any else 4

    def _progress(self, index, target, prop, outcome: RunOutcome, new: list[str], unique: int) -> None:
        cases = sum(p.cases for p in outcome.properties)
        steps = sum(p.steps for p in outcome.properties)
        rate = steps / outcome.seconds if outcome.seconds > 0 else 0.0
        line = (f"nightly [{_hms(self.journal.spent_seconds)}/{_hms(self.settings['budget_seconds'])}] run {index} "
                f"{target}/{prop or 'all'} seed {outcome.seed}: {outcome.verdict}, {cases} cases, "
                f"{rate:.0f} ops/s, {len(outcome.failures)} failure(s); {unique} unique")
        if new:
            line += f" (new: {', '.join(new)})"
        print(line, flush=True)
        for problem in outcome.problems:
            print(f"nightly: {problem}", file=sys.stderr, flush=True)


def check_campaign_dir(out_dir: Path) -> None:
    """--out is a new directory or one of this tool's campaigns, never someone else's directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OrchestrationError(f"--out {out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(p.name != "previous" for p in out_dir.iterdir()) and not (out_dir / SETTINGS).exists():
        raise OrchestrationError(f"--out {out_dir}: not empty and not a nightly campaign (no {SETTINGS}); "
                                 f"give a new directory or a campaign's own")


def archive_previous(out_dir: Path) -> None:
    """--fresh: the campaign in out_dir becomes out_dir/previous (replacing an older one)."""
    prev = out_dir / "previous"
    if prev.exists():
        shutil.rmtree(prev)
    entries = [p for p in out_dir.iterdir()] if out_dir.is_dir() else []
    if not entries:
        return
    prev.mkdir()
    for p in entries:
        p.rename(prev / p.name)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out).resolve()
    try:
        check_campaign_dir(out_dir)
        if args.fresh:
            archive_previous(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        settings = merge_settings(args, load_settings(out_dir))
        binary = find_tdxhp(settings["tdxhp"])
        settings["tdxhp_used"] = str(binary)
        settings["provenance"] = provenance.of_binary(binary)
        save_settings(out_dir, settings)
        stop_on_sigterm()
        return Campaign(out_dir, settings, binary, args.max_runs).run()
    except OrchestrationError as e:
        print(f"nightly: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nightly: interrupted; resume with --out {out_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
