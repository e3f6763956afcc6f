"""Aggregates over a list of runs: per-property totals and unique failures by signature."""

from __future__ import annotations

from dataclasses import dataclass, field

from runners.py.results import Failure, RunOutcome


@dataclass
class PropertyTotals:
    target: str
    property: str
    invariants: list[str] = field(default_factory=list)
    runs: int = 0
    cases: int = 0
    steps: int = 0
    seconds: float = 0.0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    skip_reasons: set[str] = field(default_factory=set)
    signatures: set[str] = field(default_factory=set)

    @property
    def cases_per_hour(self) -> float:
        return self.cases / self.seconds * 3600 if self.seconds > 0 else 0.0


@dataclass
class UniqueFailure:
    first: Failure
    first_run: int
    first_elapsed: float      # campaign seconds (budget time) at the end of the first run seeing it
    count: int = 0
    last_run: int = 0
    kinds: set[str] = field(default_factory=set)


@dataclass
class Summary:
    properties: dict[tuple[str, str], PropertyTotals] = field(default_factory=dict)
    failures: dict[str, UniqueFailure] = field(default_factory=dict)
    scenarios: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    crashed: int = 0
    hung: int = 0
    malformed: int = 0
    interrupted: int = 0
    seconds: float = 0.0

    def add(self, index: int, elapsed_end: float, run: RunOutcome, interrupted: bool = False) -> list[str]:
        """Adds one run; returns the signatures it saw for the first time."""
        self.runs += 1
        self.seconds += run.seconds
        self.crashed += run.verdict == "crash"
        self.hung += run.verdict == "hang"
        self.malformed += run.verdict == "malformed"
        self.interrupted += interrupted
        for p in run.properties:
            t = self.properties.setdefault((run.target, p.id), PropertyTotals(run.target, p.id))
            t.invariants = p.invariants or t.invariants
            t.runs += 1
            t.cases += p.cases
            t.steps += p.steps
            t.seconds += p.seconds
            t.passed += p.status == "pass"
            t.failed += p.status == "fail"
            t.skipped += p.status == "skip"
            if p.status == "skip" and p.reason:
                t.skip_reasons.add(p.reason)
        for sc, n in run.scenarios_reached.items():
            self.scenarios[sc] = self.scenarios.get(sc, 0) + n
        new = []
        for f in run.failures:
            u = self.failures.get(f.signature)
            if u is None:
                u = self.failures[f.signature] = UniqueFailure(f, index, elapsed_end)
                new.append(f.signature)
            u.count += 1
            u.last_run = index
            u.kinds.add(f.kind)
            key = (run.target, f.property or "all")
            if key in self.properties:
                self.properties[key].signatures.add(f.signature)
        return new

    @property
    def totals(self) -> tuple[int, int]:
        return (sum(t.cases for t in self.properties.values()), sum(t.steps for t in self.properties.values()))
