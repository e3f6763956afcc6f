"""A nightly campaign's record: settings plus one JSON line per finished run.

The journal is the single source of truth; the corpus index and the report are derived
from it, so a kill at any point loses at most the run in flight, and that run's
directory is harvested on resume.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from runners.py import atomic
from runners.py.results import RunOutcome

SETTINGS = "nightly.json"
JOURNAL = "journal.jsonl"


class Journal:
    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = out_dir / JOURNAL
        self.records: list[dict] = []
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(errors="replace").splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                RunOutcome.from_dict(rec["outcome"])   # validates the shape now, not mid-report
                self.records.append(rec)
            except (ValueError, KeyError, TypeError) as e:
                # Only a torn last line is expected (kill during append); that run is re-harvested.
                if n == len(lines):
                    print(f"nightly: {self.path}:{n}: dropping a torn last line ({e}); "
                          f"its run is harvested again", file=sys.stderr)
                    atomic.write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records))
                else:
                    raise ValueError(f"{self.path}:{n}: unreadable journal line: {e}") from None

    def append(self, record: dict) -> None:
        atomic.append_line(self.path, json.dumps(record, sort_keys=True))
        self.records.append(record)

    @property
    def spent_seconds(self) -> float:
        return sum(r["outcome"].get("seconds", 0.0) for r in self.records)

    @property
    def next_index(self) -> int:
        return max((r["index"] for r in self.records), default=0) + 1

    def indices(self) -> set[int]:
        return {r["index"] for r in self.records}

    def outcomes(self) -> list[tuple[dict, RunOutcome]]:
        return [(r, RunOutcome.from_dict(r["outcome"])) for r in self.records]


def load_settings(out_dir: Path) -> dict | None:
    p = out_dir / SETTINGS
    if not p.exists():
        return None
    return json.loads(p.read_text())


def save_settings(out_dir: Path, settings: dict) -> None:
    atomic.write_json(out_dir / SETTINGS, settings)
