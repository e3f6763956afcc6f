"""Merges the directories of a sharded nightly (`nightly --shard I/N`) into one campaign: the runs'
directories, one journal in run order, a corpus de-duplicated by failure signature (shortest case
kept, as one campaign would keep it) and the report.

  /usr/bin/python3 -m runners.py.merge --out out/nightly out/shard-1 out/shard-2 out/shard-3

An --out that already holds a campaign moves to --out/previous, so the report shows what is new,
gone and still failing since the last merge.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners.py import atomic, report  # noqa: E402
from runners.py.corpus import Corpus  # noqa: E402
from runners.py.invoke import OrchestrationError  # noqa: E402
from runners.py.journal import SETTINGS, Journal, load_settings, save_settings  # noqa: E402
from runners.py.nightly import archive_previous  # noqa: E402
from runners.py.results import RunOutcome  # noqa: E402

# Settings every shard must share for the merge to be one campaign.
SHARED = ("targets", "properties", "run_seconds", "seed", "mutants")
RUN_DIR = re.compile(r"[/\\]runs[/\\](\d{4,})[/\\](.*)$")


def load_shards(dirs: list[Path]) -> list[tuple[Path, dict]]:
    shards = []
    for d in dirs:
        s = load_settings(d) if d.is_dir() else None
        if s is None:
            raise OrchestrationError(f"{d}: not a nightly campaign (no {SETTINGS})")
        if not s.get("shard"):
            raise OrchestrationError(f"{d}: not a shard (its {SETTINGS} has no 'shard'; run nightly with --shard I/N)")
        shards.append((d, s))
    first = shards[0][1]
    for d, s in shards[1:]:
        for key in SHARED:
            if s.get(key) != first.get(key):
                raise OrchestrationError(f"{d}: '{key}' is {s.get(key)!r}, but {shards[0][0]} has {first.get(key)!r}")
    n = first["shard"][1]
    got = sorted(s["shard"][0] for _, s in shards)
    if any(s["shard"][1] != n for _, s in shards) or got != list(range(1, n + 1)):
        names = ", ".join("{}/{}".format(*s["shard"]) for _, s in shards)
        raise OrchestrationError(f"shards must be 1/{n} .. {n}/{n}, each once; got {names}")
    return shards


def relocate(case_file: str | None, index: int, out_dir: Path) -> str | None:
    """A case path inside a shard's runs/NNNN/ -> the same file under the merged campaign's runs/."""
    if not case_file:
        return case_file
    m = RUN_DIR.search(case_file)
    if not m or int(m.group(1)) != index:
        return case_file
    return str(out_dir / "runs" / m.group(1) / m.group(2))


def merge(out_dir: Path, shard_dirs: list[Path]) -> int:
    shards = load_shards(shard_dirs)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / SETTINGS).exists():
            raise OrchestrationError(f"--out {out_dir}: not empty and not a campaign; give a new directory")
        archive_previous(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for d, s in shards:
        for rec in Journal(d).records:
            records.append((rec["index"], s["shard"][0], d, rec))
    records.sort(key=lambda r: r[0])
    seen_index = {}
    for index, shard, d, _ in records:
        if index in seen_index:
            raise OrchestrationError(f"run {index} is in both {seen_index[index]} and {d}")
        seen_index[index] = d
    journal, corpus = Journal(out_dir), Corpus(out_dir / "corpus")
    elapsed = 0.0
    for index, shard, d, rec in records:
        src = d / "runs" / f"{index:04d}"
        if src.is_dir():
            shutil.copytree(src, out_dir / "runs" / f"{index:04d}")
        outcome = RunOutcome.from_dict(rec["outcome"])
        for f in outcome.failures:
            f.case_file = relocate(f.case_file, index, out_dir)
        merged = dict(rec, shard=shard, elapsed_before=elapsed, outcome=outcome.to_dict(),
                      corpus={f.signature: corpus.offer(f) for f in outcome.failures})
        journal.append(merged)
        elapsed += outcome.seconds
    first = shards[0][1]
    settings = {k: first.get(k) for k in SHARED}
    settings.update(budget_seconds=sum(s.get("budget_seconds", 0) for _, s in shards),
                    tdxhp=first.get("tdxhp"), tdxhp_used=first.get("tdxhp_used"),
                    merged_from=[str(d) for d, _ in shards], shards=first["shard"][1])
    save_settings(out_dir, settings)
    path = report.write(out_dir, journal, corpus, settings, f"merged from {len(shards)} shard(s)")
    unique = len({f.signature for _, run in journal.outcomes() for f in run.failures})
    print(f"merge: {len(records)} run(s) from {len(shards)} shard(s), {unique} unique failure(s); report {path}")
    return 1 if unique else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="merge", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="merged campaign directory")
    ap.add_argument("shards", nargs="+", help="the shard directories (nightly --shard I/N --out DIR)")
    args = ap.parse_args(argv)
    try:
        return merge(Path(args.out).resolve(), [Path(d).resolve() for d in args.shards])
    except (OrchestrationError, ValueError, OSError) as e:
        print(f"merge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
