"""Where a campaign's or a gate's verdict comes from: the tdxhp build, the host, and what each run's
results.json says of its target (flavour, kernel under test, TDX module)."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

RUN_FIELDS = ("target", "kernel", "tdx_module", "tdxhp_version", "tdxhp_commit")


def of_binary(binary: Path) -> dict:
    """`tdxhp --version` ("tdxhp 0.6.0 (commit abc123)") and the host kernel; never raises."""
    prov = {"tdxhp": str(binary), "host_kernel": platform.release(),
            "tdxhp_version": "unknown", "tdxhp_commit": "unknown"}
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        prov["tdxhp_version"] = f"unknown ({type(e).__name__})"
        return prov
    m = re.match(r"tdxhp (\S+) \(commit ([^)]+)\)", out.strip())
    if m:
        prov["tdxhp_version"], prov["tdxhp_commit"] = m.group(1), m.group(2)
    return prov


def of_results(doc: dict) -> dict:
    """The provenance block of one results.json, restricted to known string fields."""
    block = doc.get("provenance") if isinstance(doc, dict) else None
    if not isinstance(block, dict):
        return {}
    return {k: str(block[k])[:200] for k in RUN_FIELDS if k in block}


def describe_runs(provs: list[dict]) -> list[str]:
    """One line per distinct (target flavour, kernel, TDX module) the runs recorded."""
    seen = sorted({(p.get("target", "?"), p.get("kernel", "?"), p.get("tdx_module", "?")) for p in provs if p})
    return [f"{t}: kernel {k}, TDX module {m}" for t, k, m in seen]
