"""Which fixture cases the swprot flavour (6.12 SW-protected VMs) can replay.

The smoke replays exactly those and requires each to PASS or FAIL: a SKIP there would mean a
fixture that looked applicable was refused, which is itself a finding. The rest are listed
with the reason, never replayed to a silent SKIP.
"""
import json

# Ops only a TD (accept, MapGPA), the sim (fault injection) or an in-place gmem (pins) offers.
TD_OR_SIM_OPS = {"accept": "TDG.MEM.PAGE.ACCEPT exists only in a TD",
                 "map-gpa": "TDVMCALL MapGPA exists only in a TD",
                 "inject": "fault injection exists only in the sim",
                 "pin": "no userspace way to pin guest_memfd pages",
                 "unpin": "no userspace way to pin guest_memfd pages"}


def swprot_refusal(case: dict) -> str:
    """Why a 6.12 SW-protected VM cannot serve this case ("" when it can)."""
    cfg = case.get("config", {})
    backing = cfg.get("backing", "hugetlb-2m")   # domain Config's default
    if backing != "4k":
        return f"backing {backing}: 6.12 guest_memfd allocates 4K folios only"
    if cfg.get("attr_mode", "per-vm") != "per-vm":
        return "in-place conversion (gmem-owned attributes) is not in 6.12"
    if cfg.get("build_pages"):
        return "build pages (TDH.MEM.PAGE.ADD) exist only for a TD"
    for i, op in enumerate(case.get("ops", [])):
        kind = op.get("op", "?")
        if kind in TD_OR_SIM_OPS:
            return f"op {i} {kind}: {TD_OR_SIM_OPS[kind]}"
        if op.get("queued"):
            return f"op {i} is queued on vCPU 1: only the sim interleaves at mmu_lock drops"
    return ""


def split(paths):
    """(applicable paths, [(path, reason)] not applicable); unreadable files are not applicable."""
    applicable, refused = [], []
    for path in paths:
        try:
            with open(path) as f:
                reason = swprot_refusal(json.load(f))
        except (OSError, ValueError) as e:
            reason = f"unreadable case file: {e}"
        if reason:
            refused.append((path, reason))
        else:
            applicable.append(path)
    return applicable, refused
