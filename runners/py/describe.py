"""A case file's ops in the domain's words (README "Case files"; domain/SEMANTICS.md), for reports."""

from __future__ import annotations


def _num(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return None
    return None


def _gfns(op: dict) -> str:
    gfn, n = _num(op.get("gfn")), _num(op.get("npages"))
    if gfn is None:
        return f"gfn {op.get('gfn')!s}"
    if n is None or n == 1:
        return f"gfn {gfn:#x}"
    return f"gfns [{gfn:#x}, {gfn + n:#x}) ({n} pages)"


def describe_op(op: dict) -> str:
    """One op as a sentence; unknown shapes are shown as they are, never dropped."""
    if not isinstance(op, dict):
        return f"(not an op: {op!r})"
    kind = op.get("op", "?")
    who = "vCPU 1 (queued): " if op.get("queued") else ""
    if kind in ("convert", "map-gpa"):
        how = "host converts" if kind == "convert" else "guest MapGPA converts"
        return f"{how} {_gfns(op)} to {op.get('to', '?')}"
    if kind == "punch":
        return f"punch a hole in guest_memfd over {_gfns(op)}"
    if kind == "prefault":
        return f"KVM_PRE_FAULT_MEMORY {_gfns(op)}"
    if kind == "access":
        if op.get("write"):
            value = op.get("value")
            return f"{who}guest writes {value if value is not None else 'its pattern'} to {_gfns(op)}"
        return f"{who}guest reads {_gfns(op)}"
    if kind == "accept":
        return f"{who}guest accepts {_gfns(op)} at {op.get('level', '?')}"
    if kind in ("pin", "unpin"):
        return f"{kind} gmem pages of {_gfns(op)}"
    if kind == "discard-shared":
        return f"MADV_DONTNEED the shared host memory of {_gfns(op)}"
    if kind in ("delete-slot", "add-slot"):
        return f"{'delete' if kind == 'delete-slot' else 'add back'} memslot {op.get('slot', '?')}"
    if kind == "inject":
        what = op.get("status") or op.get("fault") or "?"
        count = op.get("count", 1)
        return f"arm {what} at {op.get('site', '?')} for the next {count} attempt(s)"
    rest = ", ".join(f"{k} {v}" for k, v in op.items() if k != "op")
    return f"{kind} {rest}".strip()


def describe_config(config: dict) -> str:
    if not isinstance(config, dict):
        return "config: ?"
    slots = config.get("slots") or []
    parts = []
    for s in slots if isinstance(slots, list) else []:
        if isinstance(s, dict):
            parts.append(f"slot {s.get('id', '?')}: {_gfns(s)}")
    extra = [f"{k} {config[k]}" for k in ("backing", "attr_mode", "max_private_level") if k in config]
    return "; ".join(parts + extra)
