"""Reading tdxhp's run JSON: field errors, signatures, exit-code consistency."""

import json
import unittest
from pathlib import Path

from runners.py.invoke import Invocation
from runners.py.results import MalformedOutput, collect_run, fallback_signature, parse_run_json
from runners.py.tests.helpers import FakeTdxhpTest, failure, prop, run_json


class ParseTest(unittest.TestCase):
    def test_field_errors_name_the_place(self):
        doc = run_json([prop("accept", "fail")])
        with self.assertRaisesRegex(MalformedOutput, r"run 3: properties\[0\]: status is fail but field 'failure'"):
            parse_run_json(json.dumps(doc), "run 3", Path("."))
        doc = run_json([prop("accept", status="maybe")])
        with self.assertRaisesRegex(MalformedOutput, "status 'maybe' is not pass, fail or skip"):
            parse_run_json(json.dumps(doc), "run 3", Path("."))
        with self.assertRaisesRegex(MalformedOutput, "field 'tdxhp' is 2"):
            parse_run_json(json.dumps(run_json([]) | {"tdxhp": 2}), "run 3", Path("."))

    def test_missing_signature_gets_a_stable_fallback(self):
        f = failure("INV-DATA", "data", "x")
        del f["signature"]
        parsed = parse_run_json(json.dumps(run_json([prop("data", "fail", failure=f)])), "r", Path("."))
        sig = parsed["failures"][0].signature
        self.assertEqual(sig, fallback_signature("INV-DATA", "data", f["message"]))
        self.assertTrue(sig.startswith("INV-DATA/data/"))


class CollectTest(FakeTdxhpTest):
    def invocation(self, code, stdout=""):
        (self.tmp / "stdout.txt").write_text(stdout)
        (self.tmp / "stderr.txt").write_text("")
        return Invocation("run 9 (sim, all properties, seed 1)", ["tdxhp"], code, False, 1.0,
                          self.tmp / "stdout.txt", self.tmp / "stderr.txt")

    def test_exit_1_without_a_failing_property_is_a_failure(self):
        out = collect_run(self.invocation(1, json.dumps(run_json([prop("accept")]))), self.tmp / "none", "sim", 1)
        self.assertEqual([f.signature for f in out.failures], ["TDXHP-OUTPUT/sim/all/exit1-without-failure"])

    def test_internal_error_exit_is_a_failure_even_without_output(self):
        (self.tmp / "stderr.txt").write_text("tdxhp: internal error: bad variant access\n")
        inv = self.invocation(3)
        (self.tmp / "stderr.txt").write_text("tdxhp: internal error: bad variant access\n")
        out = collect_run(inv, self.tmp / "none", "sim", 1, "accept")
        self.assertEqual([f.signature for f in out.failures], ["TDXHP-EXIT/sim/accept/exit3"])
        self.assertIn("bad variant access", out.failures[0].message)
        self.assertEqual(out.verdict, "error")

    def test_relative_case_path_resolves_against_the_out_dir(self):
        out_dir = self.tmp / "o"
        (out_dir / "cases").mkdir(parents=True)
        (out_dir / "cases" / "c.json").write_text("{}")
        doc = run_json([prop("accept", "fail", failure=failure("INV-ACCEPT", "accept", "h", case="cases/c.json"))])
        (out_dir / "results.json").write_text(json.dumps(doc))
        out = collect_run(self.invocation(1), out_dir, "sim", 1)
        self.assertEqual(out.failures[0].case_file, str((out_dir / "cases" / "c.json").resolve()))


if __name__ == "__main__":
    unittest.main()
