"""Sharded nightlies: N shards merged equal one campaign with the same base seed and run count."""

import json

from runners.py import merge, nightly
from runners.py.tests.helpers import FAKE_TDXHP, FakeTdxhpTest, answer, case_doc, failure, prop, run_json


def failing(digest, n_ops, invariant="INV-ACCEPT", pid="accept-level"):
    return answer(run_json([prop(pid, "fail", failure=failure(invariant, pid, digest, case=f"cases/{digest}.json"))]),
                  cases={f"{digest}.json": case_doc(n_ops)})


# Answer seed % 5: which run fails, and with how long a case, depends only on the run's seed.
BY_SEED = [answer(run_json([prop("accept-level", cases=11)], scenarios={"SC-1": 2})),
           failing("aaa", 6), failing("aaa", 3), failing("bbb", 4, "INV-NOPROMOTE", "no-promote"),
           answer(run_json([prop("no-promote", "skip", reason="needs kvm"), prop("accept-level")]))]
# Not an all-skip answer: a session drops a target/property that skips everything, and a shard only
# knows its own runs (README, "Sharded campaigns").


class ShardTest(FakeTdxhpTest):
    def nightly(self, out, *extra):
        return self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / out),
                                             "--seconds", "3600", "--run-seconds", "5", "--seed", "100",
                                             "--property", "accept-level", "--property", "no-promote", *extra])

    def normalized(self, out):
        """What must not depend on sharding: the journal without timings, the corpus, failures.json."""
        root = self.tmp / out
        runs = []
        for line in (root / "journal.jsonl").read_text().splitlines():
            rec = json.loads(line)
            o = rec["outcome"]
            for f in o["failures"]:
                f["case_file"] = str(f["case_file"]).replace(str(root), "<out>")
            runs.append({"index": rec["index"], "property": rec["property"], "corpus": rec["corpus"],
                         **{k: v for k, v in o.items() if k != "seconds"}})
        corpus = {p.name: p.read_text() for p in sorted((root / "corpus").iterdir())}
        return runs, corpus, json.loads((root / "failures.json").read_text())

    def test_three_shards_merged_equal_one_campaign(self):
        self.plan(run=BY_SEED, by_seed=True)
        code, _, _ = self.nightly("whole", "--max-runs", "6")
        self.assertEqual(code, 1)
        whole_calls = sorted(map(tuple, self.calls("run")), key=lambda c: c[c.index("--seed") + 1])
        self.plan(run=BY_SEED, by_seed=True)
        for i in (1, 2, 3):
            self.nightly(f"shard-{i}", "--shard", f"{i}/3", "--max-runs", "2")
        shard_calls = sorted(map(tuple, self.calls("run")), key=lambda c: c[c.index("--seed") + 1])
        seeds = [[c[c.index("--seed") + 1] for c in self.calls("run") if f"shard-{i}" in c[c.index("--out") + 1]]
                 for i in (1, 2, 3)]
        self.assertEqual(seeds, [["101", "104"], ["102", "105"], ["103", "106"]], "disjoint, interleaved seeds")
        strip = lambda calls: [tuple(a for j, a in enumerate(c) if j == 0 or c[j - 1] != "--out") for c in calls]  # noqa: E731
        self.assertEqual(strip(shard_calls), strip(whole_calls), "same seeds, targets and properties per run")

        code, out, err = self.call_main(merge.main, ["--out", str(self.tmp / "merged")] +
                                        [str(self.tmp / f"shard-{i}") for i in (1, 2, 3)])
        self.assertEqual(code, 1, err)
        self.assertIn("6 run(s) from 3 shard(s), 2 unique failure(s)", out)
        whole, merged = self.normalized("whole"), self.normalized("merged")
        self.assertEqual(merged[0], whole[0], "journal")
        self.assertEqual(merged[1], whole[1], "corpus: one case per signature, the shortest")
        self.assertEqual(merged[2], whole[2], "failures.json")
        self.assertEqual(len(json.loads(merged[1][next(iter(merged[1]))])["ops"]), 3)
        for rec in merged[0]:
            for f in rec["failures"]:
                self.assertTrue((self.tmp / f["case_file"].replace("<out>", "merged")).is_file(), f["case_file"])
        self.assertTrue((self.tmp / "merged" / "report.md").is_file())

    def test_merge_refuses_incomplete_or_mismatched_shards(self):
        self.plan(run=BY_SEED, by_seed=True)
        self.nightly("s1", "--shard", "1/2", "--max-runs", "1")
        code, _, err = self.call_main(merge.main, ["--out", str(self.tmp / "m"), str(self.tmp / "s1")])
        self.assertEqual(code, 2)
        self.assertIn("shards must be 1/2 .. 2/2", err)
        self.nightly("s2", "--shard", "2/2", "--max-runs", "1", "--mutant", "MUT-PROMOTE")
        code, _, err = self.call_main(merge.main, ["--out", str(self.tmp / "m"), str(self.tmp / "s1"), str(self.tmp / "s2")])
        self.assertEqual(code, 2)
        self.assertIn("'mutants'", err)

    def test_bad_shard_argument_names_the_flag(self):
        self.plan(run=BY_SEED, by_seed=True)
        for bad in ("0/3", "4/3", "a/b", "1"):
            code, _, err = self.nightly(f"bad-{bad.replace('/', '_')}", "--shard", bad)
            self.assertEqual(code, 2, bad)
            self.assertIn("--shard", err)
        code, _, err = self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "noseed"),
                                                     "--shard", "1/2", "--max-runs", "1"])
        self.assertEqual(code, 2)
        self.assertIn("--shard needs --seed", err)
