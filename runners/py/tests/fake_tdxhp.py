#!/usr/bin/python3
"""A stand-in for the tdxhp binary: replays canned answers from a plan file ($FAKE_TDXHP_PLAN).

Plan: {"log": "argv log (JSON lines)", "run": [answer, ...], "replay": [answer, ...]}
The n-th call of a verb gets the n-th answer (the last one repeats); with "by_seed": true, a call with
--seed S gets answer S mod len(answers) instead, so sharded campaigns see the answers one campaign would.
An answer may hold:
  "results": run JSON, written to --out DIR/results.json and printed with --json
  "stdout": raw text printed instead of the JSON (malformed output)
  "write_results": false to skip DIR/results.json
  "cases": {"name.json": case document} written to DIR/cases/ before anything else
  "stderr": text, "sleep": seconds, "exit": code, "crash": signal name (e.g. "SIGSEGV")
"""
import json
import os
import signal
import sys
import time
from pathlib import Path


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def main():
    argv = sys.argv[1:]
    plan_path = Path(os.environ["FAKE_TDXHP_PLAN"])
    plan = json.loads(plan_path.read_text())
    verb = argv[0] if argv else ""
    if verb == "--version":
        print("tdxhp 9.9.9 (commit fake1234)")
        return 0
    with open(plan["log"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    counter = plan_path.with_suffix(f".{verb}.count")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    answers = plan.get(verb)
    if not answers:
        print(f"tdxhp: unknown verb '{verb}'", file=sys.stderr)
        return 2
    if plan.get("by_seed") and option(argv, "--seed") is not None:
        answer = answers[int(option(argv, "--seed")) % len(answers)]
    else:
        answer = answers[min(n, len(answers) - 1)]
    out_dir = Path(option(argv, "--out")) if option(argv, "--out") else None
    if out_dir:
        for name, doc in answer.get("cases", {}).items():
            (out_dir / "cases").mkdir(parents=True, exist_ok=True)
            (out_dir / "cases" / name).write_text(json.dumps(doc))
    if "stderr" in answer:
        sys.stderr.write(answer["stderr"] + "\n")
        sys.stderr.flush()
    time.sleep(answer.get("sleep", 0))
    results = answer.get("results")
    if results is not None and out_dir and answer.get("write_results", True):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(results))
    if "stdout" in answer:
        sys.stdout.write(answer["stdout"])
    elif results is not None and "--json" in argv:
        sys.stdout.write(json.dumps(results) + "\n")
    sys.stdout.flush()
    if "crash" in answer:
        os.kill(os.getpid(), getattr(signal, answer["crash"]))
    return answer.get("exit", 0)


if __name__ == "__main__":
    sys.exit(main())
