#!/usr/bin/env python3
"""kill -9 of `tdxhp run` at its worst moments (issue 15): what is on disk afterwards must be
readable, must say the run did not end, and must keep every finding made so far.

Usage: kill9_test.py TDXHP_BINARY
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

TDXHP = sys.argv[1]
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok     " if ok else "FAILED ") + what, flush=True)
    if not ok:
        failures.append(what)


def start(out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([TDXHP, "run", "--target", "sim", "--no-progress", "--out", str(out),
                             "--junit", str(out / "junit-extra.xml"), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, **(env or {})))


def wait_for(cond, seconds: float, poll: float = 0.02) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return cond()


def kill9(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait()


def results(out: Path) -> dict | None:
    try:
        return json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return None


def killed_mid_run(work: Path) -> None:
    """Clean sim, killed after a few checkpoints: the three files exist, parse, and say incomplete."""
    out = work / "mid-run"
    p = start(out, "--seconds", "60", "--seed", "11")
    wait_for(lambda: (results(out) or {}).get("totals", {}).get("cases", 0) > 0, 20)
    time.sleep(1.5)  # at least one more checkpoint
    kill9(p)
    doc = results(out)
    check(doc is not None, "mid-run: results.json is complete JSON after kill -9")
    if doc is None:
        return
    check(doc.get("in_progress") is True and doc["verdict"] == "incomplete",
          f"mid-run: results.json says incomplete (verdict {doc['verdict']!r})")
    check(doc["totals"]["cases"] > 0, f"mid-run: results.json counts the cases run ({doc['totals']['cases']})")
    prov = doc.get("provenance", {})
    check(all(prov.get(k) for k in ("tdxhp_version", "tdxhp_commit", "kernel", "target", "tdx_module")),
          f"mid-run: provenance recorded ({sorted(prov)})")
    ktap = (out / "results.ktap").read_text()
    check(ktap.startswith("KTAP version 1\n") and ktap.rstrip().splitlines()[-1].startswith("Bail out! incomplete"),
          "mid-run: KTAP ends with 'Bail out! incomplete'")
    for name in ("junit.xml", "junit-extra.xml"):
        try:
            suite = ET.parse(out / name).getroot().find("testsuite")
            errors = suite.get("errors") if suite is not None else None
            check(errors == "1" and suite.find("testcase[@name='incomplete']/error") is not None,
                  f"mid-run: {name} is well-formed with an 'incomplete' error testcase")
        except (OSError, ET.ParseError) as e:
            check(False, f"mid-run: {name} readable ({e})")
    leftovers = glob.glob(str(out / "*.tmp"))
    check(not leftovers or all(Path(t).with_suffix("").exists() for t in leftovers),
          "mid-run: a torn temporary file never replaces a result file")


def killed_after_a_failure(work: Path) -> None:
    """A failure is on disk, in results.json and as a case file, as soon as it is shrunk."""
    out = work / "after-failure"
    p = start(out, "--mutant", "MUT-HEAD-ONLY", "--seconds", "60", "--seed", "3")
    found = wait_for(lambda: (results(out) or {}).get("totals", {}).get("failures", 0) > 0, 30)
    kill9(p)
    check(found, "after-failure: results.json listed the failure while the run went on")
    doc = results(out) or {"properties": []}
    failed = [pr for pr in doc["properties"] if pr["status"] == "fail"]
    case = failed[0]["failure"].get("case_file", "") if failed else ""
    check(bool(case) and Path(case).exists(), f"after-failure: the failure's case file exists ({case})")
    if case and Path(case).exists():
        r = subprocess.run([TDXHP, "replay", case], capture_output=True, text=True, timeout=60)
        check(r.returncode == 1, f"after-failure: tdxhp replay of the saved case fails again (exit {r.returncode})")


def killed_while_shrinking(work: Path) -> None:
    """Between the first failing case and its shrunk form, the unshrunk case is on disk and replays.
    Shrinks take a few ms, so each shrink step is slowed (TDXHP_TEST_SHRINK_DELAY_MS) to land the
    kill in that window; a few runs are still tried in case one fails with nothing left to shrink."""
    for attempt, (mutant, seed) in enumerate([("MUT-PROMOTE", 3), ("MUT-SLOT-PARTIAL-ZAP", 3),
                                              ("MUT-STALE-SPLIT", 3), ("MUT-PROMOTE", 5), ("MUT-STALE-SPLIT", 7),
                                              ("MUT-SLOT-PARTIAL-ZAP", 8), ("MUT-PROMOTE", 9), ("MUT-NO-TRACK", 2)]):
        out = work / f"shrinking-{attempt}"
        p = start(out, "--mutant", mutant, "--seconds", "30", "--seed", str(seed),
                  env={"TDXHP_TEST_SHRINK_DELAY_MS": "100"})
        pattern = str(out / "cases" / "*_unshrunk.json")
        caught = wait_for(lambda: bool(glob.glob(pattern)) or p.poll() is not None, 30, poll=0.0005)
        kill9(p)
        left = glob.glob(pattern)
        if not caught or not left:
            print(f"note   shrinking: attempt {attempt} ({mutant}, seed {seed}) missed the window", flush=True)
            continue
        r = subprocess.run([TDXHP, "replay", left[0]], capture_output=True, text=True, timeout=60)
        check(r.returncode == 1, f"shrinking: the unshrunk case {Path(left[0]).name} replays and fails "
                                 f"(exit {r.returncode}, attempt {attempt})")
        return
    check(False, "shrinking: no kill landed between a failure and its shrunk case in 8 attempts")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tdxhp-kill9-"))
    try:
        killed_mid_run(work)
        killed_after_a_failure(work)
        killed_while_shrinking(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
