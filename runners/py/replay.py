"""Replaying saved case files with `tdxhp replay` so fixed bugs stay fixed."""

from __future__ import annotations

import json
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


def case_files(dirs: list[Path]) -> list[Path]:
    files = []
    for d in dirs:
        if d.is_file():
            files.append(d)
        elif d.is_dir():
            files.extend(sorted(d.rglob("*.json")))
    return files


def replay_case(binary: Path, case: Path, log_dir: Path, target: str | None, timeout: float) -> ReplayOutcome:
    argv = ["replay", str(case), "--json"] + (["--target", target] if target else [])
    inv = invoke(binary, argv, f"replay {case}", log_dir, timeout)
    return interpret(inv, case, target or _case_target(case))


def _case_target(case: Path) -> str:
    try:
        return str(json.loads(case.read_text()).get("target", "sim"))
    except (OSError, ValueError, AttributeError):
        return "sim"


def _first_violation(stdout_path: Path) -> dict:
    """Best effort: the replay JSON's violation/failure object, if tdxhp printed one."""
    try:
        doc = json.loads(stdout_path.read_text(errors="replace"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    for key in ("failure", "violation"):
        if isinstance(doc.get(key), dict):
            return doc[key]
    for p in doc.get("properties", []) if isinstance(doc.get("properties"), list) else []:
        if isinstance(p, dict) and isinstance(p.get("failure"), dict):
            return p["failure"]
    return {}


def _reason(stdout_path: Path) -> str:
    try:
        doc = json.loads(stdout_path.read_text(errors="replace"))
        return str(doc.get("reason", "")) if isinstance(doc, dict) else ""
    except (OSError, ValueError):
        return ""


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
                      property=str(v.get("property", "")), invariant=str(v.get("invariant", "")),
                      message=" ".join(str(tail).split()), step=v.get("step"), case_file=str(case.resolve()))
    return ReplayOutcome(case, "fail", seconds, failure)
