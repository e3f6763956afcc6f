"""Merge gate: a fixed-budget, fixed-seed `tdxhp run` per target, plus a replay of every saved case;
only failures whose signature is not in the known-failure baseline block.

Exit codes: 0 no new failure, 1 new failure, 2 usage/input error, 4 everything skipped, 130 interrupted.

  /usr/bin/python3 -m runners.py.gate --seconds 300 --baseline fixtures/baselines/known.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `runners.py` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners.py import atomic, baseline, junit, provenance  # noqa: E402
from runners.py.invoke import (EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, EXIT_SKIP, EXIT_USAGE,  # noqa: E402
                               OrchestrationError, find_tdxhp, invoke, stop_on_sigterm)
from runners.py.replay import case_files, replay_case, replay_flags  # noqa: E402
from runners.py.results import Failure, RunOutcome, collect_run  # noqa: E402

DEFAULT_SEED = 1            # fixed so a gate verdict is reproducible; --seed overrides
DEFAULT_SECONDS = 60
HANG_GRACE_SECONDS = 120


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="gate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", dest="targets", help="sim|kvm, repeatable (default sim)")
    ap.add_argument("--property", action="append", dest="properties", help="property id, repeatable (default all)")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=int, help=f"budget per target run (default {DEFAULT_SECONDS})")
    budget.add_argument("--cases", type=int, help="case budget per target run instead of time")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED}, fixed)")
    ap.add_argument("--mutant", action="append", dest="mutants", default=[], help="sim mutant, repeatable")
    ap.add_argument("--baseline", action="append", type=Path,
                    help=f"known-failure file or directory, repeatable (default {baseline.DEFAULT_DIR})")
    ap.add_argument("--no-baseline", action="store_true", help="every failure blocks")
    ap.add_argument("--replay", action="append", type=Path, default=[],
                    help="directory (or file) of case files to replay, repeatable")
    ap.add_argument("--replay-target", help="target for replays (default: each case's own)")
    ap.add_argument("--replay-mutant", help="mutant for replays, `none` for the clean sim (default: each case's own)")
    ap.add_argument("--no-run", action="store_true", help="only replay, no exploration run")
    ap.add_argument("--out", type=Path, default=Path("out/gate"), help="results directory (default out/gate)")
    ap.add_argument("--junit", type=Path, help="JUnit XML path (default OUT/junit.xml)")
    ap.add_argument("--tdxhp", help="tdxhp binary (default $TDXHP or build/runners/cli/tdxhp)")
    args = ap.parse_args(argv)
    if (args.seconds is not None and args.seconds <= 0) or (args.cases is not None and args.cases <= 0):
        ap.error("the budget must be positive")
    if args.no_run and not args.replay:
        ap.error("--no-run needs --replay DIR")
    return args


def run_target(binary: Path, args, target: str, out_dir: Path) -> RunOutcome:
    budget = ["--cases", str(args.cases)] if args.cases is not None else \
             ["--seconds", str(args.seconds if args.seconds is not None else DEFAULT_SECONDS)]
    argv = ["run", "--target", target, *budget, "--seed", str(args.seed), "--out", str(out_dir), "--json"]
    for p in args.properties or []:
        argv += ["--property", p]
    for m in args.mutants:
        argv += ["--mutant", m]
    label = f"gate run ({target}, seed {args.seed})"
    # A case budget has no wall-clock bound; allow a generous one before calling it a hang.
    timeout = (args.seconds or DEFAULT_SECONDS) * 2 + HANG_GRACE_SECONDS if args.cases is None else 3600
    inv = invoke(binary, argv, label, out_dir, timeout)
    if inv.returncode == EXIT_USAGE:
        raise OrchestrationError(f"{label}: tdxhp rejected its arguments (exit 2): {inv.stderr_tail(6)}\n"
                                 f"command: {' '.join(inv.argv)}")
    return collect_run(inv, out_dir, target, args.seed)


def _failure_details(f: Failure, replay_args: tuple[str, ...] = ()) -> str:
    lines = [f"signature: {f.signature}", f"target: {f.target}"]
    if f.invariant:
        lines.append(f"invariant: {f.invariant}" + (f" at step {f.step}" if f.step is not None else ""))
    lines.append(f"message: {f.message}")
    if f.case_file:
        lines.append(f"case: {f.case_file}")
        lines.append(" ".join(["reproduce: tdxhp replay", f.case_file, *replay_args, "--trace"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        binary = find_tdxhp(args.tdxhp)
        known = [] if args.no_baseline else baseline.load(args.baseline or [baseline.DEFAULT_DIR])
        return gate(binary, args, known)
    except OrchestrationError as e:
        print(f"gate: error: {e}", file=sys.stderr)
        return 2


def gate(binary: Path, args, known: list[baseline.KnownFailure]) -> int:
    for d in args.replay:
        if not d.exists():
            raise OrchestrationError(f"--replay {d}: no such file or directory")
    out_dir = args.out.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise OrchestrationError(f"--out {out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    suites: list[junit.Suite] = []
    blocking: list[Failure] = []
    tolerated: list[tuple[Failure, baseline.KnownFailure]] = []
    ran_something = False

    def judge(f: Failure) -> baseline.KnownFailure | None:
        k = baseline.match(known, f)
        (tolerated.append((f, k)) if k else blocking.append(f))
        return k

    origin = dict(provenance.of_binary(binary), seed=args.seed, mutants=",".join(args.mutants) or "none")
    print(f"gate: tdxhp {origin['tdxhp_version']} (commit {origin['tdxhp_commit']}), host kernel "
          f"{origin['host_kernel']}, seed {args.seed}, mutants {origin['mutants']}")
    runs, replays = [], []
    interrupted = False
    try:
        for target in ([] if args.no_run else (args.targets or ["sim"])):
            run = run_target(binary, args, target, out_dir / f"run-{target}")
            runs.append(run)
            suite = junit.Suite(f"tdxhp run --target {target} --seed {args.seed}",
                                properties={**origin, **{f"run_{k}": v for k, v in run.provenance.items()}})
            for line in provenance.describe_runs([run.provenance]):
                print(f"gate: provenance of {line}")
            by_property = {f.property: f for f in run.failures if f.kind == "property"}
            for p in run.properties:
                tc = junit.TestCase(f"tdxhp.{target}", p.id, p.seconds)
                if p.status == "skip":
                    tc.status, tc.message = "skip", f"skipped: {p.reason or 'no reason given'}"
                elif p.status == "pass" and p.cases == 0:   # never a pass without a case, whatever tdxhp says
                    tc.status, tc.message = "skip", "reported as a pass with 0 cases run: nothing was checked"
                else:
                    ran_something = True
                f = by_property.get(p.id)
                if f:
                    k = judge(f)
                    tc.details = _failure_details(f)
                    tc.status, tc.message = ("skip", f"known failure {f.signature}: {k.note} ({k.issue})") if k \
                        else ("fail", f"{f.invariant}: {f.message}")
                suite.cases.append(tc)
            for f in run.failures:      # crash, hang, malformed output: the process itself failed
                if f.kind != "property":
                    ran_something = True
                    k = judge(f)
                    suite.cases.append(junit.TestCase(f"tdxhp.{target}", f"tdxhp process ({f.kind})", run.seconds,
                                                      "skip" if k else "fail",
                                                      f"known failure: {k.note}" if k else f.message,
                                                      _failure_details(f)))
            suites.append(suite)
            for problem in run.problems:
                print(f"gate: {problem}", file=sys.stderr)

        cases = case_files(args.replay)
        if cases:
            suite = junit.Suite("tdxhp replay", properties=dict(origin))
            for i, case in enumerate(cases):
                r = replay_case(binary, case, out_dir / "replay" / f"{i:04d}-{case.stem}", args.replay_target,
                                timeout=600, mutant=args.replay_mutant)
                replays.append(r)
                tc = junit.TestCase("tdxhp.replay", str(case), r.seconds, r.status)
                if r.status == "skip":
                    tc.message = f"skipped: {r.reason or 'target lacks a capability'}"
                else:
                    ran_something = True
                if r.failure:
                    k = judge(r.failure)
                    tc.details = _failure_details(r.failure, replay_flags(args.replay_target, args.replay_mutant))
                    tc.status, tc.message = ("skip", f"known failure {r.failure.signature}: {k.note} ({k.issue})") if k \
                        else ("fail", r.failure.message)
                suite.cases.append(tc)
            suites.append(suite)
        elif args.replay:
            print(f"gate: no case files under {', '.join(map(str, args.replay))}; nothing replayed", file=sys.stderr)

    except KeyboardInterrupt:   # SIGINT, or SIGTERM via main(): keep what ran, never a pass
        interrupted = True
        suites.append(junit.Suite("tdxhp gate", [junit.TestCase(
            "tdxhp.gate", "interrupted", 0.0, "error",
            f"interrupted (SIGINT/SIGTERM) after {len(runs)} run(s) and {len(replays)} replay(s)")]))

    junit_path = args.junit or out_dir / "junit.xml"
    junit.write(junit_path, suites)
    seen = {f.signature for f, _ in tolerated}
    stale = [k for k in known if not any(k.matches(f) for f, _ in tolerated)]
    verdict = "fail" if blocking else "interrupted" if interrupted else ("pass" if ran_something else "skip")
    atomic.write_json(out_dir / "gate.json", {
        "verdict": verdict, "seed": args.seed, "tdxhp": str(binary),
        "provenance": dict(origin, runs=provenance.describe_runs([r.provenance for r in runs])),
        "new_failures": [vars(f) for f in blocking],
        "known_failures": [dict(vars(f), note=k.note, issue=k.issue) for f, k in tolerated],
        "baseline_not_seen": [{"signature": k.signature, "note": k.note, "issue": k.issue} for k in stale],
        "runs": [r.to_dict() for r in runs],
        "replays": [{"case": str(r.case), "status": r.status, "seconds": r.seconds, "reason": r.reason,
                     "failure": vars(r.failure) if r.failure else None} for r in replays]})

    for run in runs:
        counts = {s: sum(p.status == s for p in run.properties) for s in ("pass", "fail", "skip")}
        print(f"gate: {run.label}: tdxhp verdict {run.verdict}; {counts['pass']} passed, {counts['fail']} failed, "
              f"{counts['skip']} skipped, {sum(p.cases for p in run.properties)} cases in {run.seconds:.1f} s")
    if replays:
        counts = {s: sum(r.status == s for r in replays) for s in ("pass", "fail", "skip")}
        print(f"gate: replayed {len(replays)} case(s): {counts['pass']} passed, {counts['fail']} failed, "
              f"{counts['skip']} skipped")
    for f, k in tolerated:
        print(f"gate: known failure (does not block): {f.signature}: {k.note} [{k.issue}]")
    for k in stale:
        print(f"gate: baseline entry not seen this run (fixed? remove it): {k.signature} [{k.issue}]")
    for f in blocking:
        where = f" case {f.case_file}" if f.case_file else ""
        print(f"gate: NEW FAILURE {f.signature} on {f.target}: {f.message}{where}")
    print(f"gate: verdict {verdict.upper()} ({len(blocking)} new, {len(seen)} known); "
          f"junit {junit_path}; details {out_dir / 'gate.json'}")
    return {"fail": EXIT_FAIL, "pass": EXIT_PASS, "skip": EXIT_SKIP, "interrupted": EXIT_INTERRUPTED}[verdict]


if __name__ == "__main__":
    sys.exit(main())
