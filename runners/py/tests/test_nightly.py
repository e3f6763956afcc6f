"""Nightly campaigns against a fake tdxhp: de-duplication, corpus, crashes, resumption, report."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
import xml.dom.minidom

from runners.py import nightly
from runners.py.corpus import file_name_for
from runners.py.tests.helpers import FAKE_TDXHP, REPO_ROOT, FakeTdxhpTest, answer, case_doc, failure, prop, run_json


class NightlyTest(FakeTdxhpTest):
    def nightly(self, *extra, out="camp"):
        return self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / out),
                                             "--seconds", "3600", "--run-seconds", "5", *extra])

    def journal(self, out="camp"):
        return [json.loads(line) for line in (self.tmp / out / "journal.jsonl").read_text().splitlines()]

    def failing(self, digest, n_ops, invariant="INV-ACCEPT", pid="accept"):
        return answer(run_json([prop(pid, "fail", failure=failure(invariant, pid, digest, case=f"cases/{digest}.json")),
                                prop("contig")]), cases={f"{digest}.json": case_doc(n_ops)})

    def test_same_signature_is_one_corpus_entry_with_the_shortest_case(self):
        self.plan(run=[self.failing("aaa", 6), self.failing("aaa", 3), self.failing("aaa", 5),
                       self.failing("bbb", 4, "INV-CONTIG", "contig")])
        code, out, _ = self.nightly("--max-runs", "4", "--seed", "100")
        self.assertEqual(code, 1)
        corpus = self.tmp / "camp" / "corpus"
        kept = json.loads((corpus / file_name_for("INV-ACCEPT/accept/aaa")).read_text())
        self.assertEqual(len(kept["ops"]), 3, "the 3-op case replaced the 6-op one; the 5-op one did not")
        self.assertEqual(sorted(p.name for p in corpus.iterdir()),
                         sorted([file_name_for("INV-ACCEPT/accept/aaa"), file_name_for("INV-CONTIG/contig/bbb")]),
                         "the corpus holds only case files, so it can be replayed as a directory")
        index = json.loads((self.tmp / "camp" / "failures.json").read_text())
        self.assertEqual(sorted(index), ["INV-ACCEPT/accept/aaa", "INV-CONTIG/contig/bbb"])
        self.assertEqual(index["INV-ACCEPT/accept/aaa"]["count"], 3)
        self.assertEqual(index["INV-ACCEPT/accept/aaa"]["case_ops"], 3)
        self.assertIn("new: INV-ACCEPT/accept/aaa", out)
        self.assertEqual(out.count("new: INV-ACCEPT/accept/aaa"), 1, "a signature is new only once")

    def test_fresh_seed_per_run_and_fixed_base_seed(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "3", "--seed", "100")
        seeds = [c[c.index("--seed") + 1] for c in self.calls("run")]
        self.assertEqual(seeds, ["101", "102", "103"])
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "3", out="random")
        seeds = [c[c.index("--seed") + 1] for c in self.calls("run")]
        self.assertEqual(len(set(seeds)), 3, f"random seeds should differ: {seeds}")

    def test_rotates_over_targets_and_properties(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "4", "--target", "sim", "--target", "kvm", "--property", "a", "--property", "b")
        combos = [(c[c.index("--target") + 1], c[c.index("--property") + 1]) for c in self.calls("run")]
        self.assertEqual(set(combos), {("sim", "a"), ("sim", "b"), ("kvm", "a"), ("kvm", "b")})

    def test_crash_counts_as_failure_and_keeps_partial_results_and_case(self):
        partial = run_json([prop("accept", cases=7)])
        self.plan(run=[answer(partial, crash="SIGSEGV", stderr="AddressSanitizer: SEGV",
                              cases={"inflight.json": case_doc(2)})])
        code, out, err = self.nightly("--max-runs", "1")
        self.assertEqual(code, 1)
        rec = self.journal()[0]["outcome"]
        self.assertEqual(rec["verdict"], "crash")
        self.assertEqual(rec["signal"], "SIGSEGV")
        self.assertEqual(rec["properties"][0]["cases"], 7, "partial results are kept")
        crash = rec["failures"][0]
        self.assertEqual(crash["signature"], "CRASH/sim/all/SIGSEGV")
        self.assertIn("AddressSanitizer", crash["message"])
        self.assertTrue(crash["case_file"].endswith("inflight.json"))
        self.assertTrue((self.tmp / "camp" / "corpus" / file_name_for("CRASH/sim/all/SIGSEGV")).exists())
        self.assertIn("killed by SIGSEGV", err)

    def test_hang_is_killed_and_reported(self):
        self.plan(run=[answer(run_json([prop("contig")]), sleep=30)])
        old = nightly.HANG_GRACE_SECONDS
        nightly.HANG_GRACE_SECONDS = -1.5   # timeout = 2*1 - 1.5 = 0.5 s
        try:
            started = time.monotonic()
            code, _, _ = self.nightly("--max-runs", "1", "--run-seconds", "1")
        finally:
            nightly.HANG_GRACE_SECONDS = old
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(code, 1)
        self.assertEqual(self.journal()[0]["outcome"]["failures"][0]["signature"], "HANG/sim/all/timeout")

    def test_malformed_output_names_the_run(self):
        self.plan(run=[answer(stdout='{"tdxhp": 1, "verdict": "pass"', exit_code=0)])
        code, _, err = self.nightly("--max-runs", "1", "--seed", "6")
        self.assertEqual(code, 1)
        self.assertIn("run 1 (sim, all properties, seed 7)", err)
        self.assertIn("not valid JSON", err)
        self.plan(run=[answer(run_json([prop("contig")]) | {"properties": [{"status": "pass"}]}, exit_code=0)])
        code, _, err = self.nightly("--max-runs", "1", out="missing-field")
        self.assertIn("properties[0]: field 'id' missing", err)

    def test_repeated_unreadable_output_stops_with_usage_error(self):
        self.plan(run=[answer(stdout="garbage", exit_code=0)])
        code, _, err = self.nightly()
        self.assertEqual(code, 2)
        self.assertIn("gave no readable results", err)
        self.assertEqual(len(self.calls("run")), nightly.MAX_UNREADABLE_IN_A_ROW)

    def test_missing_binary_and_usage_error_exit_2(self):
        code, _, err = self.call_main(nightly.main, ["--tdxhp", str(self.tmp / "nope"), "--out", str(self.tmp / "x")])
        self.assertEqual(code, 2)
        self.assertIn("tdxhp binary not found", err)
        self.plan(run=[answer(exit_code=2, stderr="tdxhp: unknown property 'nosuch'")])
        code, _, err = self.nightly("--property", "nosuch")
        self.assertEqual(code, 2)
        self.assertIn("unknown property 'nosuch'", err)

    def test_mutant_with_a_real_target_is_refused_before_any_run(self):
        code, _, err = self.nightly("--target", "sim", "--target", "kvm", "--mutant", "MUT-PROMOTE")
        self.assertEqual(code, 2)
        self.assertIn("--mutant", err)
        self.assertIn("--target kvm", err)
        self.assertEqual(self.calls("run"), [])

    def test_all_skipped_target_is_dropped_and_exits_4(self):
        self.plan(run=[answer(run_json([prop("accept", "skip", cases=0, reason="no tracefs: cannot see levels")],
                                       target="kvm"))])
        code, out, _ = self.nightly("--target", "kvm")
        self.assertEqual(code, 4)
        self.assertEqual(len(self.calls("run")), 1)
        self.assertIn("no tracefs", out)
        report = (self.tmp / "camp" / "report.md").read_text()
        self.assertIn("Skipped (not counted as passes)", report)

    def test_resume_continues_numbering_budget_and_corpus(self):
        self.plan(run=[self.failing("aaa", 5)])
        self.nightly("--max-runs", "2", "--seed", "10")
        spent = sum(r["outcome"]["seconds"] for r in self.journal())
        self.plan(run=[self.failing("aaa", 2), self.failing("ccc", 4)])
        code, out, _ = self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "camp"),
                                                     "--max-runs", "2"])
        self.assertEqual(code, 1)
        self.assertIn("1 unique failure(s) so far", out)
        recs = self.journal()
        self.assertEqual([r["index"] for r in recs], [1, 2, 3, 4])
        self.assertAlmostEqual(recs[2]["elapsed_before"], spent, places=3)
        seeds = [c[c.index("--seed") + 1] for c in self.calls("run")]
        self.assertEqual(seeds, ["13", "14"], "the stored base seed and settings carry over")
        kept = json.loads((self.tmp / "camp" / "corpus" / file_name_for("INV-ACCEPT/accept/aaa")).read_text())
        self.assertEqual(len(kept["ops"]), 2)
        index = json.loads((self.tmp / "camp" / "failures.json").read_text())
        self.assertEqual(index["INV-ACCEPT/accept/aaa"]["count"], 3)
        self.assertNotIn("new: INV-ACCEPT/accept/aaa", out, "already known before the resume")

    def test_resume_harvests_a_run_the_nightly_never_journaled(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "1")
        # A nightly killed -9 mid-run leaves a started run dir with tdxhp's partial output.
        run_dir = self.tmp / "camp" / "runs" / "0002"
        (run_dir / "tdxhp" / "cases").mkdir(parents=True)
        (run_dir / "tdxhp" / "cases" / "k.json").write_text(json.dumps(case_doc(3)))
        (run_dir / "tdxhp" / "results.json").write_text(json.dumps(run_json(
            [prop("accept", "fail", failure=failure("INV-ACCEPT", "accept", "kkk", case="cases/k.json"))])))
        (run_dir / "started.json").write_text(json.dumps({
            "index": 2, "label": "run 2 (sim, all properties, seed 5)", "target": "sim", "property": None,
            "seed": 5, "argv": ["tdxhp"], "started_at": time.time() - 2}))
        with open(self.tmp / "camp" / "journal.jsonl", "a") as j:
            j.write('{"index": 2, "torn')          # the append that the kill cut short
        self.plan(run=[answer(run_json([prop("contig")]))])
        code, out, err = self.nightly("--max-runs", "1")
        self.assertIn("harvested interrupted run 2", out)
        self.assertIn("torn last line", err)
        recs = self.journal_tolerant()
        self.assertEqual([r["index"] for r in recs], [1, 2, 3])
        self.assertTrue(recs[1]["interrupted"])
        self.assertEqual(recs[1]["outcome"]["failures"][0]["signature"], "INV-ACCEPT/accept/kkk")
        self.assertTrue((self.tmp / "camp" / "corpus" / file_name_for("INV-ACCEPT/accept/kkk")).exists())
        self.assertEqual(code, 1)

    def test_resume_keeps_failures_a_killed_run_saved_without_results(self):  # D2
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "1")
        run_dir = self.tmp / "camp" / "runs" / "0002"
        (run_dir / "tdxhp" / "cases").mkdir(parents=True)
        doc = dict(case_doc(3), property="accept-level",
                   violation={"invariant": "INV-LIVE", "step": 1, "expected": "2M again", "seen": "4K"})
        (run_dir / "tdxhp" / "cases" / "INV-LIVE_accept-level_3a272219.json").write_text(json.dumps(doc))
        (run_dir / "tdxhp" / "cases" / "interrupted-accept-level.json").write_text(json.dumps(case_doc(2)))
        (run_dir / "started.json").write_text(json.dumps({
            "index": 2, "label": "run 2 (sim, all properties, seed 5)", "target": "sim", "property": None,
            "seed": 5, "argv": ["tdxhp"], "started_at": time.time() - 2}))
        self.plan(run=[answer(run_json([prop("contig")]))])
        code, out, _ = self.nightly("--max-runs", "1")
        self.assertIn("harvested interrupted run 2 (sim, all properties, seed 5): 1 failure(s) kept", out)
        self.assertTrue((self.tmp / "camp" / "corpus" / file_name_for("INV-LIVE/accept-level/3a272219")).exists())
        self.assertEqual(code, 1)

    def test_resume_keeps_a_checkpoint_and_the_failure_still_shrinking(self):  # issue 15: kill -9
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "1")
        run_dir = self.tmp / "camp" / "runs" / "0002"
        (run_dir / "tdxhp" / "cases").mkdir(parents=True)
        (run_dir / "tdxhp" / "cases" / "k.json").write_text(json.dumps(case_doc(3)))
        checkpoint = dict(run_json([prop("accept", "fail", failure=failure("INV-ACCEPT", "accept", "kkk",
                                                                             case="cases/k.json")),
                                    prop("contig")]), verdict="incomplete", in_progress=True)
        (run_dir / "tdxhp" / "results.json").write_text(json.dumps(checkpoint))
        # shrinking when the kill came: only the unshrunk case is on disk, not yet in results.json
        doc = dict(case_doc(9), property="contig",
                   violation={"invariant": "INV-CONTIG", "step": 4, "expected": "4K", "seen": "2M"})
        (run_dir / "tdxhp" / "cases" / "INV-CONTIG_contig_unshrunk.json").write_text(json.dumps(doc))
        (run_dir / "started.json").write_text(json.dumps({
            "index": 2, "label": "run 2 (sim, all properties, seed 5)", "target": "sim", "property": None,
            "seed": 5, "argv": ["tdxhp"], "started_at": time.time() - 2}))
        self.plan(run=[answer(run_json([prop("contig")]))])
        code, out, _ = self.nightly("--max-runs", "1")
        self.assertIn("harvested interrupted run 2 (sim, all properties, seed 5): 2 failure(s) kept", out)
        recs = self.journal()
        self.assertEqual(sorted(f["signature"] for f in recs[1]["outcome"]["failures"]),
                         ["INV-ACCEPT/accept/kkk", "INV-CONTIG/contig/unshrunk"])
        self.assertEqual(recs[1]["outcome"]["verdict"], "interrupted")
        self.assertEqual(code, 1)

    def test_report_records_provenance(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        self.nightly("--max-runs", "1")
        report = (self.tmp / "camp" / "report.md").read_text()
        self.assertIn("- provenance: tdxhp 9.9.9 (commit fake1234), host kernel ", report)
        self.assertIn("- ran on sim: kernel 6.99.0-test, TDX module simulated", report)
        settings = json.loads((self.tmp / "camp" / "nightly.json").read_text())
        self.assertEqual(settings["provenance"]["tdxhp_commit"], "fake1234")

    def test_refuses_a_directory_that_is_not_a_campaign(self):
        (self.tmp / "other").mkdir()
        (self.tmp / "other" / "results.json").write_text("{}")
        code, _, err = self.nightly(out="other")
        self.assertEqual(code, 2)
        self.assertIn("not a nightly campaign", err)

    def test_child_dies_with_a_killed_orchestrator(self):  # D3: no orphan in its own session
        pid_file = self.tmp / "child.pid"
        script = ("import sys; from pathlib import Path; from runners.py.invoke import invoke; "
                  f"invoke(Path('/bin/sh'), ['-c', 'echo $$ > {pid_file}; exec sleep 60'], 'c', Path('{self.tmp}/logs'), 120)")
        parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        for _ in range(100):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            self.fail("the child outlived its killed parent")

    def journal_tolerant(self, out="camp"):
        recs = []
        for line in (self.tmp / out / "journal.jsonl").read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
        return recs

    def test_sigterm_stops_gracefully_and_resume_continues(self):
        self.plan(run=[answer(run_json([prop("contig")])),
                       answer(run_json([prop("contig")]), sleep=30, cases={"inflight.json": case_doc(1)})])
        proc = self.spawn("runners.py.nightly", ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "camp"),
                                                  "--seconds", "3600", "--run-seconds", "60"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (self.tmp / "camp" / "runs" / "0002" / "tdxhp" / "cases").exists():
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 130, err)
        recs = self.journal()
        self.assertEqual([r["index"] for r in recs], [1, 2])
        self.assertTrue(recs[1]["interrupted"])
        self.assertEqual(recs[1]["outcome"]["failures"], [], "our own kill is not a tdxhp failure")
        self.assertIn("interrupted", (self.tmp / "camp" / "report.md").read_text())
        self.plan(run=[answer(run_json([prop("contig")]))])
        code, _, _ = self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "camp"),
                                                   "--max-runs", "1"])
        self.assertEqual(code, 0)
        self.assertEqual([r["index"] for r in self.journal()], [1, 2, 3])

    def test_report_and_plot_are_written_after_every_run(self):
        self.plan(run=[self.failing("aaa", 4), answer(run_json([prop("accept", cases=50), prop("contig")],
                                                               scenarios={"SC-PROMOTE": 4}))])
        self.nightly("--max-runs", "2")
        report = (self.tmp / "camp" / "report.md").read_text()
        self.assertIn("`INV-ACCEPT/accept/aaa`", report)
        self.assertIn("(corpus/INV-ACCEPT__accept__aaa.json) (4)", report)
        self.assertIn("| sim | accept | INV-ACCEPT | 2 | 1 | 1 | 0 | 60 |", report)
        self.assertIn("SC-PROMOTE: 4", report)
        self.assertIn("state: **stopped**", report)
        svg = (self.tmp / "camp" / "report.svg").read_text()
        xml.dom.minidom.parseString(svg)
        self.assertIn("sim/accept", svg)
        self.assertIn("polyline", svg)


if __name__ == "__main__":
    unittest.main()
