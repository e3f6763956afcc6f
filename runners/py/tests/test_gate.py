"""Merge gate against a fake tdxhp: baseline filtering, replays, verdicts, exit codes, JUnit."""

import json
import signal
import time
import xml.etree.ElementTree as ET

from runners.py import gate
from runners.py.tests.helpers import FAKE_TDXHP, FakeTdxhpTest, answer, case_doc, failure, prop, run_json

ACCEPT_FAIL = failure("INV-ACCEPT", "accept", "abc", case="cases/a.json")


class GateTest(FakeTdxhpTest):
    def baseline(self, *entries, name="known.json"):
        path = self.tmp / name
        path.write_text(json.dumps({"format": 1, "known_failures": list(entries)}))
        return path

    def gate(self, *extra, baseline_path=None):
        argv = ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "gate"), "--seconds", "5"]
        argv += ["--baseline", str(baseline_path)] if baseline_path else ["--no-baseline"]
        return self.call_main(gate.main, argv + list(extra))

    def junit(self):
        return ET.parse(self.tmp / "gate" / "junit.xml").getroot()

    def failing_run(self, target="sim"):
        return answer(run_json([prop("accept", "fail", failure=ACCEPT_FAIL), prop("contig")], target=target),
                      cases={"a.json": case_doc(3)})

    def test_clean_run_passes_with_fixed_default_seed(self):
        self.plan(run=[answer(run_json([prop("accept"), prop("contig")]))])
        code, out, _ = self.gate()
        self.assertEqual(code, 0)
        self.assertIn("verdict PASS", out)
        call = self.calls("run")[0]
        self.assertEqual(call[call.index("--seed") + 1], str(gate.DEFAULT_SEED))
        self.assertEqual(call[call.index("--seconds") + 1], "5")
        self.plan(run=[answer(run_json([prop("accept")]))])
        self.call_main(gate.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "g2"), "--no-baseline",
                                   "--seed", "77", "--cases", "40"])
        call = self.calls("run")[0]
        self.assertEqual((call[call.index("--seed") + 1], call[call.index("--cases") + 1]), ("77", "40"))

    def test_records_provenance_in_output_json_and_junit(self):  # issue 15
        self.plan(run=[answer(run_json([prop("accept")]))])
        code, out, _ = self.gate("--mutant", "MUT-HEAD-ONLY")
        self.assertEqual(code, 0)
        self.assertIn("gate: tdxhp 9.9.9 (commit fake1234), host kernel ", out)
        self.assertIn("seed 1, mutants MUT-HEAD-ONLY", out)
        self.assertIn("gate: provenance of sim: kernel 6.99.0-test, TDX module simulated", out)
        prov = json.loads((self.tmp / "gate" / "gate.json").read_text())["provenance"]
        self.assertEqual((prov["tdxhp_version"], prov["seed"], prov["mutants"]), ("9.9.9", 1, "MUT-HEAD-ONLY"))
        self.assertEqual(prov["runs"], ["sim: kernel 6.99.0-test, TDX module simulated"])
        props = {p.get("name"): p.get("value") for p in self.junit().iter("property")}
        self.assertEqual((props["tdxhp_commit"], props["run_kernel"], props["run_tdx_module"], props["mutants"]),
                         ("fake1234", "6.99.0-test", "simulated", "MUT-HEAD-ONLY"))

    def test_sigterm_stops_with_130_and_an_error_in_junit(self):  # issue 15: never a pass when cut short
        self.plan(run=[answer(run_json([prop("accept")]), sleep=30)])
        proc = self.spawn("runners.py.gate", ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "gate"),
                                              "--seconds", "5", "--no-baseline"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not self.log_path.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("gate: verdict INTERRUPTED", out)
        self.assertEqual(json.loads((self.tmp / "gate" / "gate.json").read_text())["verdict"], "interrupted")
        suite = self.junit().find("testsuite[@name='tdxhp gate']")
        self.assertEqual(suite.get("errors"), "1")
        self.assertIsNotNone(suite.find("testcase[@name='interrupted']/error"))

    def test_new_failure_blocks(self):
        self.plan(run=[self.failing_run()])
        code, out, _ = self.gate()
        self.assertEqual(code, 1)
        self.assertIn("NEW FAILURE INV-ACCEPT/accept/abc on sim", out)
        report = json.loads((self.tmp / "gate" / "gate.json").read_text())
        self.assertEqual([f["signature"] for f in report["new_failures"]], ["INV-ACCEPT/accept/abc"])
        self.assertTrue(report["new_failures"][0]["case_file"].endswith("run-sim/cases/a.json"))
        failed = self.junit().findall(".//testcase[failure]")
        self.assertEqual([tc.get("name") for tc in failed], ["accept"])

    def test_known_failure_does_not_block_and_is_not_reported_as_pass(self):
        self.plan(run=[self.failing_run()])
        known = self.baseline({"signature": "INV-ACCEPT/accept/abc", "note": "mirror-root split pending",
                               "issue": "https://example.invalid/7"},
                              {"signature": "INV-PAMT/pamt/zzz", "note": "fixed?", "issue": "https://example.invalid/8"})
        code, out, _ = self.gate(baseline_path=known)
        self.assertEqual(code, 0)
        self.assertIn("known failure (does not block): INV-ACCEPT/accept/abc", out)
        self.assertIn("baseline entry not seen this run (fixed? remove it): INV-PAMT/pamt/zzz", out)
        accept = self.junit().find(".//testcase[@name='accept']")
        self.assertIsNotNone(accept.find("skipped"))
        self.assertIn("mirror-root split pending", accept.find("skipped").get("message"))

    def test_baseline_patterns_and_target_scope(self):
        self.plan(run=[self.failing_run("sim"), self.failing_run("kvm")])
        known = self.baseline({"signature": "INV-ACCEPT/accept/*", "note": "only on real KVM",
                               "issue": "https://example.invalid/9", "targets": ["kvm"]})
        code, out, _ = self.gate("--target", "sim", "--target", "kvm", baseline_path=known)
        self.assertEqual(code, 1, "the sim failure is not covered by a kvm-only entry")
        self.assertIn("NEW FAILURE INV-ACCEPT/accept/abc on sim", out)
        self.assertNotIn("on kvm:", out)

    def test_shipped_baselines_load_and_name_their_fixture_cases(self):
        from pathlib import Path
        from runners.py import baseline
        repo = Path(__file__).resolve().parents[3]
        files = sorted((repo / "fixtures" / "baselines").glob("*.json"))
        known = baseline.load(files)
        self.assertGreaterEqual(len(known), 4)
        for k in known:
            if "Case: " in k.note:  # a series defect: its minimal case ships with tdxhp
                case = k.note.split("Case: ")[1].split()[0]
                self.assertTrue((repo / case).exists(), case)

    def test_baseline_errors_name_file_and_field(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        bad = self.baseline({"signature": "INV-X/p/1", "note": "", "issue": "x"}, name="bad.json")
        code, _, err = self.gate(baseline_path=bad)
        self.assertEqual(code, 2)
        self.assertIn("bad.json: known_failures[0]: field 'note'", err)
        (self.tmp / "broken.json").write_text("{")
        code, _, err = self.gate(baseline_path=self.tmp / "broken.json")
        self.assertEqual(code, 2)
        self.assertIn("broken.json: not valid JSON", err)
        self.assertEqual(self.calls("run"), [], "input errors stop before running anything")

    def test_crash_blocks_and_keeps_partial_results(self):
        self.plan(run=[answer(run_json([prop("contig", cases=12)]), crash="SIGABRT")])
        code, out, _ = self.gate()
        self.assertEqual(code, 1)
        self.assertIn("NEW FAILURE CRASH/sim/all/SIGABRT", out)
        report = json.loads((self.tmp / "gate" / "gate.json").read_text())
        self.assertEqual(report["runs"][0]["properties"][0]["cases"], 12)
        self.assertIsNotNone(self.junit().find(".//testcase[@name='tdxhp process (crash)']/failure"))

    def test_malformed_output_blocks_and_names_the_run(self):
        self.plan(run=[answer(stdout="[1, 2", exit_code=0)])
        code, out, err = self.gate()
        self.assertEqual(code, 1)
        self.assertIn("gate run (sim, seed 1)", err)
        self.assertIn("TDXHP-OUTPUT/sim/all/malformed", out)

    def test_all_skipped_exits_4(self):
        self.plan(run=[answer(run_json([prop("accept", "skip", cases=0, reason="no /dev/kvm")], target="kvm"))])
        code, out, _ = self.gate("--target", "kvm")
        self.assertEqual(code, 4)
        skipped = self.junit().find(".//testcase[@name='accept']/skipped")
        self.assertIn("no /dev/kvm", skipped.get("message"))

    def test_a_pass_with_no_case_is_not_a_run(self):  # the gate's own check, not engine.cpp's
        self.plan(run=[answer(run_json([prop("accept", "pass", cases=0)], target="kvm"), exit_code=0)])
        code, _, _ = self.gate("--target", "kvm")
        self.assertEqual(code, 4)
        skipped = self.junit().find(".//testcase[@name='accept']/skipped")
        self.assertIn("0 cases", skipped.get("message"))

    def test_usage_error_and_missing_binary_exit_2(self):
        self.plan(run=[answer(exit_code=2, stderr="tdxhp: unknown property 'nosuch'")])
        code, _, err = self.gate("--property", "nosuch")
        self.assertEqual(code, 2)
        self.assertIn("unknown property 'nosuch'", err)
        code, _, err = self.call_main(gate.main, ["--tdxhp", str(self.tmp / "missing"), "--no-baseline"])
        self.assertEqual(code, 2)
        self.assertIn("tdxhp binary not found", err)

    def test_replays_every_case_and_a_regressed_one_blocks(self):
        cases = self.tmp / "regressions"
        (cases / "sub").mkdir(parents=True)
        for name in ("a.json", "b.json", "sub/c.json"):
            (cases / name).write_text(json.dumps(case_doc(2)))
        self.plan(run=[answer(run_json([prop("contig")]))],
                  replay=[answer(exit_code=0),
                          answer(exit_code=1, stdout="replay b.json on sim\n  step 2: accept gfn 0x200 at 2M -> ok\n"
                                 "    VIOLATION INV-NOPROMOTE at step 2, gfn 0x200+512: expected 4K leaves; "
                                 "seen a 2M leaf over a page table\nverdict: fail (INV-NOPROMOTE at step 2)\n"),
                          answer(exit_code=4, stdout="verdict: skip (needs kpageflags)\n")])
        code, out, _ = self.gate("--replay", str(cases), "--replay-mutant", "none")
        self.assertEqual(code, 1)
        replayed = [c[1] for c in self.calls("replay")]
        self.assertEqual([p.rsplit("regressions/", 1)[1] for p in replayed], ["a.json", "b.json", "sub/c.json"])
        self.assertIn("NEW FAILURE REPLAY/b.json/INV-NOPROMOTE on sim: INV-NOPROMOTE at step 2, gfn 0x200+512: "
                      "expected 4K leaves; seen a 2M leaf over a page table", out)
        self.assertTrue(all(c[2:] == ["--mutant", "none"] for c in self.calls("replay")))
        self.assertIn("needs kpageflags", ET.tostring(self.junit(), encoding="unicode"))
        self.assertIn("replayed 3 case(s): 1 passed, 1 failed, 1 skipped", out)
        suite = self.junit().find("testsuite[@name='tdxhp replay']")
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("skipped")), ("3", "1", "1"))

    def test_replay_failure_can_be_baselined_and_replay_only_mode(self):
        cases = self.tmp / "regressions"
        cases.mkdir()
        (cases / "old.json").write_text(json.dumps(case_doc(1)))
        self.plan(replay=[answer(exit_code=1)])
        known = self.baseline({"signature": "REPLAY/old.json/*", "note": "regressed upstream, revert pending",
                               "issue": "https://example.invalid/10"})
        code, out, _ = self.gate("--no-run", "--replay", str(cases), baseline_path=known)
        self.assertEqual(code, 0)
        self.assertEqual(self.calls("run"), [])
        self.assertIn("known failure (does not block): REPLAY/old.json/violation", out)

    def test_replay_dir_skips_non_case_json_and_reproduce_keeps_the_mutant(self):  # D13, D11
        cases = self.tmp / "out-run"
        (cases / "cases").mkdir(parents=True)
        (cases / "results.json").write_text(json.dumps(run_json([prop("contig")])))
        (cases / "cases" / "m.json").write_text(json.dumps(case_doc(2)))
        self.plan(replay=[answer(exit_code=1, stdout="verdict: fail (INV-LIVE at step 1)\n")])
        code, _, _ = self.gate("--no-run", "--replay", str(cases), "--replay-mutant", "MUT-NO-MERGE")
        self.assertEqual(code, 1)
        self.assertEqual([c[1].rsplit("/", 1)[1] for c in self.calls("replay")], ["m.json"])
        text = ET.tostring(self.junit(), encoding="unicode")
        self.assertIn("m.json --mutant MUT-NO-MERGE --trace", text)

    def test_control_characters_keep_junit_well_formed(self):  # D9
        cases = self.tmp / "ctrl"
        cases.mkdir()
        (cases / "c.json").write_text(json.dumps(case_doc(1)))
        self.plan(replay=[answer(exit_code=1, stdout="verdict: fail (INV-\u001b[31mX\u0007 at step 0)\n")])
        self.gate("--no-run", "--replay", str(cases))
        text = (self.tmp / "gate" / "junit.xml").read_text()
        ET.fromstring(text.split("\n", 1)[1])   # well-formed
        self.assertNotIn("\x1b", text)

    def test_out_naming_a_file_is_a_usage_error(self):  # D12
        (self.tmp / "afile").write_text("x")
        code, _, err = self.call_main(gate.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "afile"),
                                                  "--no-baseline", "--seconds", "2"])
        self.assertEqual(code, 2)
        self.assertIn("exists and is not a directory", err)

    def test_missing_replay_dir_is_a_usage_error(self):
        self.plan(run=[answer(run_json([prop("contig")]))])
        code, _, err = self.gate("--replay", str(self.tmp / "nowhere"))
        self.assertEqual(code, 2)
        self.assertIn("nowhere: no such file or directory", err)


class ShippedBaselinesTest(FakeTdxhpTest):
    def test_every_shipped_baseline_loads(self):
        from runners.py import baseline
        entries = baseline.load([baseline.DEFAULT_DIR])
        self.assertTrue(baseline.DEFAULT_DIR.is_dir())
        self.assertGreater(len(entries), 0, "no shipped entry: the per-entry check below would run on nothing")
        for e in entries:
            self.assertTrue(e.issue and e.note, e.origin)
