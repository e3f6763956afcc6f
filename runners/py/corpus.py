"""The failure corpus: one case file per failure signature, the shortest one seen kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runners.py import atomic
from runners.py.results import Failure


def case_length(path: Path) -> int | None:
    """Number of ops in a case file (domain/case_file.h: top-level "ops"), None if unreadable."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ops = doc.get("ops") if isinstance(doc, dict) else None
    return len(ops) if isinstance(ops, list) else None


def file_name_for(signature: str) -> str:
    """A stable, readable file name: "INV-X/prop/abc" -> "INV-X__prop__abc.json"."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", signature.replace("/", "__")) + ".json"


class Corpus:
    def __init__(self, root: Path):
        self.root = root

    def path_for(self, signature: str) -> Path:
        return self.root / file_name_for(signature)

    def offer(self, failure: Failure) -> str:
        """Keeps failure's case if it is the first or shorter than the kept one.

        Returns "new", "shorter", "kept" (existing one is as short or shorter) or "no-case".
        Idempotent, so re-offering after a resume changes nothing.
        """
        if not failure.case_file or not Path(failure.case_file).is_file():
            return "no-case"
        src = Path(failure.case_file)
        text = src.read_text(errors="replace")
        dest = self.path_for(failure.signature)
        if not dest.exists():
            atomic.write_text(dest, text)
            return "new"
        new_len, old_len = case_length(src), case_length(dest)
        if new_len is not None and (old_len is None or new_len < old_len):
            atomic.write_text(dest, text)
            return "shorter"
        return "kept"

    def entry(self, signature: str) -> tuple[str | None, int | None]:
        """(file name relative to the corpus, op count) of the kept case, if any."""
        p = self.path_for(signature)
        return (p.name, case_length(p)) if p.exists() else (None, None)
