"""Result collection: steps.tsv, serial log and kernel log become one honest verdict."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmdrv import results  # noqa: E402

CLEAN_DMESG = "[    1.0] kvm_amd: Nested Paging enabled\n[    2.0] loading out-of-tree module taints kernel.\n"


class Verdicts(unittest.TestCase):
    def decide(self, tsv, planned=("probe", "run"), serial="", dmesg=CLEAN_DMESG, timed_out=False, qemu_rc=0,
               skip_ok=()):
        return results.decide(list(planned), results.parse_steps(tsv), serial, dmesg, timed_out, qemu_rc,
                              skip_ok=set(skip_ok))

    def test_all_steps_pass(self):
        v = self.decide("probe 0 0.5\nrun 0 41.2\n")
        self.assertEqual(v.exit_code, 0)
        self.assertEqual(v.problems, [])
        self.assertEqual(v.steps[1].seconds, 41.2)

    def test_inner_failure_code_passes_through(self):
        v = self.decide("probe 0 0.5\nrun 1 30\n")
        self.assertEqual(v.exit_code, 1)
        self.assertIn("step run exited 1", v.problems)

    def test_failed_probe_is_the_verdict_and_later_steps_are_not_a_vm_failure(self):
        v = self.decide("probe 1 0.2\n")
        self.assertEqual(v.exit_code, 1)
        self.assertEqual(v.missing, ["run"])
        self.assertFalse(any("without a result" in p for p in v.problems))

    def test_timeout_is_an_infrastructure_failure(self):
        v = self.decide("probe 0 0.5\n", dmesg=None, timed_out=True, qemu_rc=-9)
        self.assertEqual(v.exit_code, results.EXIT_INFRA)
        self.assertTrue(any("timed out" in p for p in v.problems))
        self.assertEqual(v.missing, ["run"])

    def test_panic_without_results(self):
        serial = "TDXHP-VM: init up\nKernel panic - not syncing: Attempted to kill init!\n"
        v = self.decide("", serial=serial, dmesg=None)
        self.assertEqual(v.exit_code, results.EXIT_INFRA)
        self.assertTrue(any("panicked" in p for p in v.problems))

    def test_kernel_warning_fails_a_passing_run(self):
        dmesg = CLEAN_DMESG + "[  9.1] WARNING: CPU: 1 PID: 212 at arch/x86/kvm/mmu/tdp_mmu.c:1120 foo\n"
        v = self.decide("probe 0 1\nrun 0 5\n", dmesg=dmesg)
        self.assertEqual(v.exit_code, 1)
        self.assertEqual(len(v.kernel_findings), 1)
        self.assertIn("tdp_mmu.c", v.kernel_findings[0])

    def test_fatal_marker_is_reported(self):
        v = self.decide("", serial="TDXHP-VM-FATAL: cannot mount the 9p share\n", dmesg=None)
        self.assertIn("TDXHP-VM-FATAL: cannot mount the 9p share", v.problems)
        self.assertNotEqual(v.exit_code, 0)

    def test_replay_skip_is_skip_not_pass_or_fail(self):
        v = self.decide("probe 0 1\nreplay-SC-PROMOTE 4 0.3\nreplay-SC-PIN 0 2\n",
                        planned=("probe", "replay-SC-PROMOTE", "replay-SC-PIN"), skip_ok=("replay-SC-PROMOTE",))
        self.assertEqual(v.exit_code, 0)
        self.assertEqual(v.skipped, ["replay-SC-PROMOTE"])
        self.assertIn("SKIP", results.render(v))

    def test_all_skipped_property_run_fails_the_smoke(self):
        v = results.require_ran(self.decide("probe 0 1\nrun-data-atomic 4 3\n", planned=("probe", "run-data-atomic")))
        self.assertEqual(v.exit_code, results.EXIT_SKIP)
        self.assertTrue(any("nothing ran on real KVM" in p for p in v.problems))

    def test_malformed_lines_are_ignored(self):
        self.assertEqual(len(results.parse_steps("garbage\nprobe x 1\nrun 0 2.5\n")), 1)


if __name__ == "__main__":
    unittest.main()


class PropertyCounts(unittest.TestCase):
    def test_counts_from_results_json(self):
        text = ('{"tdxhp":1,"properties":[{"id":"attr_mixed","status":"pass","cases":12,"steps":340},'
                '{"id":"accept_level","status":"skip","cases":0,"steps":0,"reason":"needs accept (tdx)"}]}')
        counts = results.property_counts(text)
        self.assertEqual([(c.id, c.status, c.steps) for c in counts],
                         [("attr_mixed", "pass", 340), ("accept_level", "skip", 0)])
        rendered = results.render_properties(counts)
        self.assertIn("needs accept (tdx)", rendered)
        self.assertIn("340 steps", rendered)

    def test_missing_or_broken_file_says_so(self):
        self.assertEqual(results.property_counts(None), [])
        self.assertEqual(results.property_counts("{not json"), [])
        self.assertIn("no results.json", results.render_properties([]))


class Evidence(unittest.TestCase):
    @staticmethod
    def counts(mapping_evidence, data_evidence):
        import json
        doc = {"tdxhp": 1, "properties": [
            {"id": "mapping-legal", "status": "pass", "cases": 5, "steps": 40, "evidence": mapping_evidence},
            {"id": "data-atomic", "status": "pass", "cases": 5, "steps": 40, "evidence": data_evidence},
            {"id": "precise-conversion", "status": "fail", "cases": 1, "steps": 3, "evidence": {}}]}
        return results.property_counts(json.dumps(doc))

    def verdict(self):
        return results.decide(["probe"], results.parse_steps("probe 0 0.5\n"), "", CLEAN_DMESG, False, 0)

    def test_a_pass_with_the_evidence_stays_a_pass(self):
        c = self.counts({"steps_with_leaves": 9, "shared_leaves_2m": 1}, {"reads_compared": 4})
        v = results.require_evidence(self.verdict(), c)
        self.assertEqual((v.exit_code, v.problems), (0, []))
        self.assertIn("shared_leaves_2m=1", results.render_properties(c))

    def test_a_pass_that_saw_no_shared_2m_leaf_or_no_read_fails_the_smoke(self):
        c = self.counts({"steps_with_leaves": 9, "shared_leaves_2m": 0}, {})
        v = results.require_evidence(self.verdict(), c)
        self.assertEqual(v.exit_code, 1)
        self.assertTrue(any("mapping-legal passed with evidence shared_leaves_2m = 0" in p for p in v.problems))
        self.assertTrue(any("data-atomic passed with evidence reads_compared = absent" in p for p in v.problems))
        self.assertFalse(any("precise-conversion" in p for p in v.problems))   # its failure speaks for itself
