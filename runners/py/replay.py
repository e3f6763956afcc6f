"""Replaying saved case files with `tdxhp replay` so fixed bugs stay fixed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from runners.py.invoke import EXIT_FAIL, EXIT_PASS, EXIT_SKIP, EXIT_USAGE, Invocation, invoke
from runners.py.results import Failure


@dataclass
class ReplayOutcome:
    case: Path
    status: str                 # pass | fail | skip
    seconds: float
    failure: Failure | None = None
    reason: str = ""            # why skipped


def _looks_like_case(path: Path) -> bool:
    """A tdxhp case file, not results.json or another JSON that happens to sit in the folder."""
    try:
        doc = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return True   # unreadable: let replay say why, as for a file named on purpose
    return isinstance(doc, dict) and "ops" in doc and "config" in doc


def case_files(dirs: list[Path]) -> list[Path]:
    """Files named on the command line, and the case files found under named directories."""
    files = []
    for d in dirs:
        if d.is_file():
            files.append(d)
        elif d.is_dir():
            files.extend(p for p in sorted(d.rglob("*.json")) if _looks_like_case(p))
    return files


def replay_flags(target: str | None, mutant: str | None) -> tuple[str, ...]:
    """The replay options that must appear in a reproduce line for it to replay the same way."""
    return (("--target", target) if target else ()) + (("--mutant", mutant) if mutant else ())


def replay_case(binary: Path, case: Path, log_dir: Path, target: str | None, timeout: float,
                mutant: str | None = None) -> ReplayOutcome:
    """`tdxhp replay CASE` on the case's own target and mutants unless overridden ("none": clean)."""
    argv = ["replay", str(case), *replay_flags(target, mutant)]
    inv = invoke(binary, argv, f"replay {case}", log_dir, timeout)
    return interpret(inv, case, target or _case_target(case))


def _case_target(case: Path) -> str:
    try:
        return str(json.loads(case.read_text()).get("target", "sim"))
    except (OSError, ValueError, AttributeError):
        return "sim"


VERDICT_FAIL = re.compile(r"^verdict: fail \((?P<invariant>\S+) at (?P<where>[^)]*)\)", re.M)
VERDICT_SKIP = re.compile(r"^verdict: skip \((?P<reason>.*)\)\s*$", re.M)
FIRST_VIOLATION = re.compile(r"^\s*VIOLATION (?P<text>.+)$", re.M)


def _case_property(case: Path) -> str:
    try:
        return str(json.loads(case.read_text()).get("property", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _first_violation(stdout_path: Path) -> dict:
    """The replay's first violation from its text output ("VIOLATION ..." / "verdict: fail (INV-X at ...)")."""
    try:
        text = stdout_path.read_text(errors="replace")
    except OSError:
        return {}
    found = {}
    if m := VERDICT_FAIL.search(text):
        found["invariant"] = m["invariant"]
        found["where"] = m["where"]
    if m := FIRST_VIOLATION.search(text):
        found["message"] = m["text"].strip()
    return found


def _reason(stdout_path: Path) -> str:
    try:
        m = VERDICT_SKIP.search(stdout_path.read_text(errors="replace"))
    except OSError:
        return ""
    return m["reason"] if m else ""


def interpret(inv: Invocation, case: Path, target: str) -> ReplayOutcome:
    """Exit 0 passes, 4 skips; 1, 2 (unreadable case), a signal or a hang fail.

    The signature is "REPLAY/<case file>/..." so a baseline can name one regression case.
    """
    seconds = round(inv.seconds, 3)
    if inv.returncode == EXIT_PASS and not inv.timed_out:
        return ReplayOutcome(case, "pass", seconds)
    if inv.returncode == EXIT_SKIP:
        return ReplayOutcome(case, "skip", seconds, reason=_reason(inv.stdout_path) or inv.stderr_tail(2))
    v = _first_violation(inv.stdout_path)
    if inv.timed_out:
        why, tail = "hang", f"no result after {inv.seconds:.0f} s, killed"
    elif inv.signal_name:
        why, tail = "crash", f"tdxhp killed by {inv.signal_name}"
    elif inv.returncode == EXIT_FAIL:
        why, tail = v.get("invariant") or "violation", v.get("message") or inv.stderr_tail(4)
    elif inv.returncode == EXIT_USAGE:
        why, tail = "unreadable", f"tdxhp could not read the case: {inv.stderr_tail(3)}"
    else:
        why, tail = "exit", f"unexpected exit code {inv.returncode}: {inv.stderr_tail(3)}"
    failure = Failure(signature=f"REPLAY/{case.name}/{why}", kind="replay", target=target,
                      property=_case_property(case), invariant=v.get("invariant", ""),
                      message=" ".join(str(tail).split()), case_file=str(case.resolve()))
    return ReplayOutcome(case, "fail", seconds, failure)
