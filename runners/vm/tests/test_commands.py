"""Argument pass-through: host options become the right inner tdxhp command lines."""
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmdrv import cli, commands  # noqa: E402


def plan(*argv):
    return commands.plan_for(cli.parse(list(argv)))


class PassThrough(unittest.TestCase):
    def test_run_options_reach_the_inner_run(self):
        p = plan("--property", "mapping-legal", "--property", "data-atomic", "--seconds", "30", "--seed", "9")
        self.assertEqual([s.name for s in p.steps], ["probe", "run"])
        self.assertEqual(p.steps[1].argv, [commands.GUEST_TDXHP, "run", "--target", "kvm",
                                           "--property", "mapping-legal", "--property", "data-atomic",
                                           "--seconds", "30", "--seed", "9", "--out", "/share"])

    def test_probe_is_first_and_stops_the_rest(self):
        p = plan("--cases", "5")
        self.assertEqual(p.steps[0].argv, [commands.GUEST_PROBE])
        self.assertTrue(p.steps[0].stop_on_failure)
        self.assertIn("--cases", p.steps[1].argv)

    def test_after_double_dash_is_verbatim(self):
        p = plan("run", "--seconds", "5", "--", "--no-progress", "--json")
        self.assertEqual(p.steps[1].argv[-2:], ["--no-progress", "--json"])

    def test_replay_copies_cases_and_names_them_apart(self):
        p = plan("replay", "a/SC-PROMOTE.json", "b/SC-PROMOTE.json", "--trace")
        self.assertEqual(list(p.case_copies.values()), ["SC-PROMOTE.json", "SC-PROMOTE-2.json"])
        self.assertEqual(p.steps[2].argv, [commands.GUEST_TDXHP, "replay", "/share/vm/cases-in/SC-PROMOTE-2.json",
                                           "--target", "kvm", "--trace"])
        self.assertTrue(all(s.skip_ok for s in p.steps[1:]))

    def test_smoke_runs_each_issue_property_with_its_own_budget_and_out_dir(self):
        p = plan("smoke", "--seconds", "25")
        runs = [s for s in p.steps if s.name.startswith("run-")]
        self.assertEqual([s.name for s in runs], [f"run-{prop}" for prop in commands.SWPROT_PROPERTIES])
        for step, prop in zip(runs, commands.SWPROT_PROPERTIES):
            argv = step.argv
            self.assertEqual(argv[argv.index("--property") + 1], prop)
            self.assertEqual(argv.count("--property"), 1)
            self.assertEqual(argv[argv.index("--seconds") + 1], "25")
            self.assertEqual(argv[argv.index("--out") + 1], f"/share/run-{prop}")
            self.assertFalse(step.skip_ok)    # an all-skipped property run fails the smoke

    def test_smoke_shows_that_a_blind_leaf_observer_fails(self):
        p = plan("smoke", "--seconds", "25")
        off = [s for s in p.steps if s.name == commands.OBSERVER_OFF]
        self.assertEqual(len(off), 1)
        script = off[0].argv[2]
        self.assertEqual(off[0].argv[:2], ["sh", "-c"])
        self.assertIn("env TDXHP_TEST_NO_LEAF_TRACE=1 /tdxhp/bin/tdxhp run --target kvm --property mapping-legal", script)
        self.assertIn("[ $rc -eq 1 ] && grep -q 'observer saw nothing' /share/observer-off/results.json", script)
        self.assertNotIn(commands.OBSERVER_OFF, [s.name for s in plan("smoke", "--property", "data-atomic").steps])

    def test_smoke_runs_the_real_kvm_test_groups_in_the_guest_and_fails_on_skip(self):
        p = plan("smoke", "--seconds", "25")
        self.assertTrue(p.needs_kvm_tests)
        self.assertFalse(plan("run", "--seconds", "5").needs_kvm_tests)
        step = next(s for s in p.steps if s.name == commands.KVM_TESTS)
        script = step.argv[2]
        self.assertIn("/tdxhp/bin/kvm_tests --gtest_filter='KvmSwprot.*:MmuTraceLive.*'", script)
        self.assertIn("grep -qF '[  SKIPPED ]'", script)
        # The script's greps against gtest's real summary lines, run by the host's sh.
        for summary, want in (("[  PASSED  ] 8 tests.\n", 0), ("[  PASSED  ] 7 tests.\n[  SKIPPED ] 1 test\n", 1),
                              ("[==========] 0 tests from 0 test suites ran.\n", 1)):
            fake = script.replace(commands.GUEST_KVM_TESTS, f"printf {shlex.quote(summary)}")
            fake = fake.replace("/tmp/kvm_tests.log", os.path.join(tempfile.mkdtemp(), "log"))
            rc = subprocess.run(["sh", "-c", fake], capture_output=True).returncode
            self.assertEqual(rc, want, summary)
        self.assertFalse(step.skip_ok)

    def test_probe_verb_needs_no_tdxhp(self):
        self.assertFalse(plan("probe").needs_tdxhp)

    def test_usage_errors(self):
        for argv in (["replay"], ["--seconds", "1", "--cases", "2"], ["--modules", "/x"], ["probe", "x.json"]):
            with self.assertRaises(SystemExit, msg=argv):
                with open(os.devnull, "w") as devnull:
                    old, sys.stderr = sys.stderr, devnull
                    try:
                        cli.parse(argv)
                    finally:
                        sys.stderr = old


class Script(unittest.TestCase):
    def test_script_records_each_step_and_its_exit_code(self):
        """Runs the generated script with sh on the host against fake programs."""
        with tempfile.TemporaryDirectory() as tmp:
            p = commands.Plan([commands.Step("good", ["true"], 10),
                               commands.Step("bad", ["sh", "-c", "echo oops; exit 3"], 10),
                               commands.Step("quoted", ["sh", "-c", "echo 'a b'"], 10)])
            script = commands.script_for(p).replace("/share", tmp)
            subprocess.run(["sh", "-c", script], check=True, capture_output=True)
            with open(os.path.join(tmp, "vm", "steps.tsv")) as f:
                rows = [line.split()[:2] for line in f]
            self.assertEqual(rows, [["good", "0"], ["bad", "3"], ["quoted", "0"]])
            with open(os.path.join(tmp, "vm", "steps", "bad.log")) as f:
                self.assertEqual(f.read(), "oops\n")

    def test_failed_probe_skips_later_steps(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = commands.Plan([commands.Step("probe", ["false"], 10, stop_on_failure=True),
                               commands.Step("run", ["true"], 10)])
            script = commands.script_for(p).replace("/share", tmp)
            out = subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True).stdout
            self.assertIn("probe failed, later steps not run", out)
            with open(os.path.join(tmp, "vm", "steps.tsv")) as f:
                self.assertEqual([line.split()[0] for line in f], ["probe"])


if __name__ == "__main__":
    unittest.main()


class SwprotFixtures(unittest.TestCase):
    def case(self, **cfg):
        ops = cfg.pop("ops", [{"op": "access", "gfn": "0x1", "write": False}])
        return {"config": {"backing": "4k", **cfg}, "ops": ops}

    def test_4k_per_vm_without_td_ops_is_applicable(self):
        from vmdrv import fixtures
        self.assertEqual(fixtures.swprot_refusal(self.case(shared_backing="thp-2m")), "")

    def test_what_swprot_cannot_serve_says_why(self):
        from vmdrv import fixtures
        self.assertIn("4K folios", fixtures.swprot_refusal({"config": {}, "ops": []}))  # default hugetlb-2m
        self.assertIn("in-place", fixtures.swprot_refusal(self.case(attr_mode="in-place")))
        self.assertIn("TD", fixtures.swprot_refusal(self.case(build_pages=[{"gfn": "0x0", "npages": 1}])))
        self.assertIn("accept", fixtures.swprot_refusal(self.case(ops=[{"op": "accept", "gfn": "0x0", "level": "4K"}])))
        self.assertIn("queued", fixtures.swprot_refusal(self.case(ops=[{"op": "access", "gfn": "0x0", "queued": True}])))

    def test_repo_has_swprot_fixtures_for_each_issue6_invariant(self):
        import glob
        from vmdrv import fixtures
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        ok, _ = fixtures.split(sorted(glob.glob(os.path.join(root, "fixtures", "cases", "*.json"))))
        names = " ".join(os.path.basename(p) for p in ok)
        # Not INV-NOOVERZAP: swprot has one root and cannot check it (vacuity audit risk 2), so
        # no swprot fixture is named for it; the punch fixture pins INV-DATA there instead.
        for inv in ("INV-ATTR", "INV-CONTIG", "INV-PRECISE", "INV-DATA"):
            self.assertIn(inv + "-", names)

    def test_smoke_with_chosen_fixtures_makes_a_skip_fail(self):
        opts = cli.parse(["smoke", "x/INV-DATA-a.json"])
        opts.cases_required = True
        p = commands.plan_for(opts)
        self.assertFalse(p.steps[-1].skip_ok)
        self.assertTrue(plan("smoke", "x/INV-DATA-a.json").steps[-1].skip_ok)

    def test_smoke_runs_each_chosen_fixture_as_an_exported_c_reproducer(self):
        opts = cli.parse(["smoke", "x/INV-DATA-a.json", "y/REG-b.json"])
        opts.cases_required = True
        p = commands.plan_for(opts)
        self.assertEqual(p.repro_cases, {"x/INV-DATA-a.json": "repro-INV-DATA-a", "y/REG-b.json": "repro-REG-b"})
        repro = [s for s in p.steps if s.name.startswith("repro-")]
        self.assertEqual([s.argv for s in repro], [["/tdxhp/bin/repro-INV-DATA-a"], ["/tdxhp/bin/repro-REG-b"]])
        self.assertFalse(any(s.skip_ok for s in repro), "a reproducer that SKIPs fails the smoke")
        self.assertEqual(plan("smoke", "x/INV-DATA-a.json").repro_cases, {}, "user-chosen cases: replay only")
