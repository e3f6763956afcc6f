"""Known-failure baselines (fixtures/baselines/*.json): failures listed there do not block a gate.

Format:
  {"format": 1, "description": "...",
   "known_failures": [{"signature": "INV-X/prop-id/<hash>", "note": "why it is known",
                       "issue": "link", "targets": ["kvm"]}]}
"signature" is exact, or a shell-style pattern when it contains * ? or [ (fnmatch);
"targets" is optional (default: every target). note and issue are required so every
entry says why it may fail and where the fix is tracked.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from runners.py.invoke import OrchestrationError
from runners.py.results import Failure

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "baselines"


@dataclass
class KnownFailure:
    signature: str
    note: str
    issue: str
    targets: list[str] | None
    origin: str               # "file.json: known_failures[2]"

    def matches(self, failure: Failure) -> bool:
        if self.targets is not None and failure.target not in self.targets:
            return False
        if any(c in self.signature for c in "*?["):
            return fnmatch.fnmatchcase(failure.signature, self.signature)
        return failure.signature == self.signature


def load(paths: list[Path]) -> list[KnownFailure]:
    """Loads baseline files (directories mean their *.json); errors name the file and field."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise OrchestrationError(f"baseline {p}: no such file or directory")
    known: list[KnownFailure] = []
    for f in files:
        known.extend(_load_file(f))
    return known


def _load_file(path: Path) -> list[KnownFailure]:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise OrchestrationError(f"baseline {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict):
        raise OrchestrationError(f"baseline {path}: expected an object at the top")
    if doc.get("format") != 1:
        raise OrchestrationError(f"baseline {path}: field 'format' must be 1, got {doc.get('format')!r}")
    entries = doc.get("known_failures")
    if not isinstance(entries, list):
        raise OrchestrationError(f"baseline {path}: field 'known_failures' must be a list")
    out = []
    for i, e in enumerate(entries):
        where = f"{path.name}: known_failures[{i}]"
        if not isinstance(e, dict):
            raise OrchestrationError(f"baseline {where}: expected an object")
        for key in ("signature", "note", "issue"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise OrchestrationError(f"baseline {where}: field '{key}' must be a non-empty string")
        targets = e.get("targets")
        if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
            raise OrchestrationError(f"baseline {where}: field 'targets' must be a list of target names")
        out.append(KnownFailure(e["signature"], e["note"], e["issue"], targets, where))
    return out


def match(known: list[KnownFailure], failure: Failure) -> KnownFailure | None:
    return next((k for k in known if k.matches(failure)), None)
