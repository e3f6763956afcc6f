"""Shared pieces of the orchestration tests: a fake tdxhp driven by a plan, and canned run JSON."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FAKE_TDXHP = Path(__file__).resolve().parent / "fake_tdxhp.py"


def prop(pid, status="pass", cases=10, steps=100, seconds=1.0, invariants=None, reason="", failure=None):
    p = {"id": pid, "invariants": invariants or [f"INV-{pid.upper()}"], "status": status,
         "cases": cases, "steps": steps, "seconds": seconds}
    if reason:
        p["reason"] = reason
    if failure:
        p["failure"] = failure
    return p


def failure(invariant, pid, digest, case="", step=2, message="gfn 0x200: 2M leaf after a 4K accept"):
    f = {"invariant": invariant, "step": step, "message": message,
         "signature": f"{invariant}/{pid}/{digest}", "shrunk_steps": 3}
    if case:
        f["case_file"] = case
    return f


def run_json(properties, target="sim", seed=1, scenarios=None):
    verdict = "fail" if any(p["status"] == "fail" for p in properties) else \
        ("skip" if properties and all(p["status"] == "skip" for p in properties) else "pass")
    return {"tdxhp": 1, "verb": "run", "target": target, "seed": seed, "mutants": [], "verdict": verdict,
            "properties": properties,
            "totals": {"cases": sum(p["cases"] for p in properties), "steps": sum(p["steps"] for p in properties),
                       "seconds": 1.0, "ops_per_sec": 1.0, "failures": 0, "skipped": 0},
            "scenarios_reached": scenarios or {},
            "provenance": {"tdxhp_version": "9.9.9", "tdxhp_commit": "fake1234", "kernel": "6.99.0-test",
                           "target": target, "tdx_module": "simulated"}}


def case_doc(n_ops):
    return {"format": 1, "id": "x", "config": {"slots": [{"gfn": 0, "npages": 512}]},
            "ops": [{"op": "accept", "gfn": i, "level": "4K"} for i in range(n_ops)]}


def answer(results=None, exit_code=None, cases=None, **extra):
    a = dict(extra)
    if results is not None:
        a["results"] = results
        a.setdefault("exit", exit_code if exit_code is not None else {"pass": 0, "fail": 1, "skip": 4}[results["verdict"]])
    elif exit_code is not None:
        a["exit"] = exit_code
    if cases:
        a["cases"] = cases
    return a


class FakeTdxhpTest(unittest.TestCase):
    """Each test gets a temp dir and a plan file the fake tdxhp reads its answers from."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tdxhp-py-test-")
        self.tmp = Path(self._tmp.name)
        self.plan_path = self.tmp / "plan.json"
        self.log_path = self.tmp / "argv.jsonl"
        self._old_env = os.environ.get("FAKE_TDXHP_PLAN")
        os.environ["FAKE_TDXHP_PLAN"] = str(self.plan_path)
        # matplotlib costs ~1 s a report; only the report.html tests draw (they switch it back on).
        self._old_plots = os.environ.get("TDXHP_REPORT_NO_PLOTS")
        os.environ["TDXHP_REPORT_NO_PLOTS"] = "1"

    def tearDown(self):
        if self._old_plots is None:
            os.environ.pop("TDXHP_REPORT_NO_PLOTS", None)
        else:
            os.environ["TDXHP_REPORT_NO_PLOTS"] = self._old_plots
        if self._old_env is None:
            os.environ.pop("FAKE_TDXHP_PLAN", None)
        else:
            os.environ["FAKE_TDXHP_PLAN"] = self._old_env
        self._tmp.cleanup()

    def plan(self, run=None, replay=None, by_seed=False):
        for counter in self.tmp.glob("plan.*.count"):
            counter.unlink()
        self.log_path.unlink(missing_ok=True)
        doc = {"log": str(self.log_path), "by_seed": by_seed}
        if run is not None:
            doc["run"] = run
        if replay is not None:
            doc["replay"] = replay
        self.plan_path.write_text(json.dumps(doc))

    def calls(self, verb=None):
        if not self.log_path.exists():
            return []
        calls = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [c for c in calls if verb is None or (c and c[0] == verb)]

    def call_main(self, main, argv):
        """Runs a CLI main() in-process; returns (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    def spawn(self, module, argv):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        return subprocess.Popen([sys.executable, "-m", module, *argv], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
