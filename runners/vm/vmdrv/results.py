"""Phase collect: turn what the guest left in the share (and the serial log) into a verdict.

Every way the guest can fail to give a verdict (panic, hang, missing step) is a failure with
a reason, never a pass: an unfinished step is reported as such, not skipped silently.
"""
import os
import re
from dataclasses import dataclass, field

EXIT_PASS = 0
EXIT_SKIP = 4        # tdxhp: nothing ran (replay of a case the swprot flavour cannot serve)
EXIT_INFRA = 5       # the VM itself failed (no boot, panic, timeout): there is no inner verdict

# Kernel self-checks that make a run fail even when every step passed (DESIGN.md targets:
# "kernel log findings"); the kvm target checks per case, this catches them across the boot.
KERNEL_FINDING = re.compile(r"(WARNING: CPU: \d+ PID: \d+|BUG: |KVM_BUG_ON|kernel BUG at|Oops: |"
                            r"general protection fault|UBSAN: |KASAN: )")
PANIC = re.compile(r"Kernel panic - not syncing")


@dataclass
class StepResult:
    name: str
    rc: int
    seconds: float


@dataclass
class Verdict:
    exit_code: int
    steps: list                    # [StepResult] that finished
    missing: list                  # planned step names with no result
    problems: list = field(default_factory=list)     # human reasons for a failure
    kernel_findings: list = field(default_factory=list)
    cases: list = field(default_factory=list)        # case files the inner run saved
    skipped: list = field(default_factory=list)      # steps that reported SKIP (exit 4)


def parse_steps(text: str) -> list:
    results = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            results.append(StepResult(parts[0], int(parts[1]), float(parts[2])))
        except ValueError:
            continue
    return results


def kernel_findings(log_text: str) -> list:
    return [line.strip() for line in log_text.splitlines() if KERNEL_FINDING.search(line)]


def decide(planned: list, steps: list, serial_text: str, dmesg_text: str | None,
           timed_out: bool, qemu_rc: int | None, cases=(), skip_ok=()) -> Verdict:
    """planned: step names in order; skip_ok: steps whose exit 4 (skip) is a SKIP, not a failure.
    The verdict is the first failing step's exit code."""
    done = {s.name for s in steps}
    missing = [name for name in planned if name not in done]
    verdict = Verdict(EXIT_PASS, steps, missing, cases=list(cases))
    for s in steps:
        if s.rc == EXIT_SKIP and s.name in skip_ok:
            verdict.skipped.append(s.name)
        elif s.rc != 0 and verdict.exit_code == EXIT_PASS:
            verdict.exit_code = s.rc
            verdict.problems.append(f"step {s.name} exited {s.rc}")
        elif s.rc != 0:
            verdict.problems.append(f"step {s.name} exited {s.rc}")
    for line in serial_text.splitlines():
        if "TDXHP-VM-FATAL" in line:
            verdict.problems.append(line.strip())
    if PANIC.search(serial_text):
        verdict.problems.append("guest kernel panicked (see vm/serial.log)")
    if timed_out:
        verdict.problems.append("timed out: QEMU was killed (see vm/serial.log for how far the guest got)")
    elif qemu_rc not in (0, None):
        verdict.problems.append(f"qemu exited {qemu_rc}")
    if dmesg_text is None:
        verdict.problems.append("no kernel log came back (guest did not reach the end of its init)")
    verdict.kernel_findings = kernel_findings(dmesg_text if dmesg_text is not None else serial_text)
    if verdict.kernel_findings:
        verdict.problems.append(f"{len(verdict.kernel_findings)} kernel WARN/BUG line(s) in the guest log")
    if missing:
        # A step that did not finish after a failed probe is expected; otherwise it is a VM failure.
        probe_failed = any(s.name == "probe" and s.rc != 0 for s in steps)
        if not probe_failed:
            verdict.problems.append(f"step(s) without a result: {', '.join(missing)}")
    if verdict.exit_code == EXIT_PASS and verdict.problems:
        verdict.exit_code = EXIT_INFRA if (missing or timed_out or dmesg_text is None) else 1
    return verdict


def saved_cases(out_dir: str, since: float = 0.0) -> list:
    """Case files the inner run wrote into OUT/cases during this boot (older ones are not ours)."""
    cases_dir = os.path.join(out_dir, "cases")
    if not os.path.isdir(cases_dir):
        return []
    paths = (os.path.join(cases_dir, n) for n in os.listdir(cases_dir) if n.endswith(".json"))
    return sorted(p for p in paths if os.path.getmtime(p) >= since - 1)


def render(verdict: Verdict) -> str:
    lines = ["guest steps:"]
    for s in verdict.steps:
        status = "PASS" if s.rc == 0 else "SKIP" if s.name in verdict.skipped else f"FAIL (exit {s.rc})"
        lines.append(f"  {s.name:<28} {status:<16} {s.seconds:7.1f}s")
    for name in verdict.missing:
        lines.append(f"  {name:<28} NOT RUN")
    for finding in verdict.kernel_findings[:10]:
        lines.append(f"  kernel: {finding}")
    for case in verdict.cases:
        lines.append(f"  saved case: {case}")
    for p in verdict.problems:
        lines.append(f"  problem: {p}")
    lines.append(f"verdict: {'PASS' if verdict.exit_code == 0 else 'FAIL'} (exit {verdict.exit_code})")
    return "\n".join(lines)


def require_ran(verdict: Verdict, step_prefix: str = "run") -> Verdict:
    """The smoke's property runs must execute for real: "all skipped" (exit 4) fails the smoke."""
    for s in verdict.steps:
        if s.name.startswith(step_prefix) and s.rc == EXIT_SKIP:
            if verdict.exit_code == EXIT_PASS:
                verdict.exit_code = EXIT_SKIP
            verdict.problems.append(f"step {s.name} skipped every property: nothing ran on real KVM")
    return verdict


@dataclass
class PropertyCount:
    id: str
    status: str
    cases: int
    steps: int
    reason: str = ""
    evidence: dict = field(default_factory=dict)   # results.json "evidence": what the checks saw


def property_counts(results_json_text: str | None) -> list:
    """Per-property status and steps executed on real KVM, from the inner run's results.json."""
    import json
    if not results_json_text:
        return []
    try:
        doc = json.loads(results_json_text)
    except json.JSONDecodeError:
        return []
    return [PropertyCount(p.get("id", "?"), p.get("status", "?"), int(p.get("cases", 0)), int(p.get("steps", 0)),
                          p.get("reason", ""), dict(p.get("evidence") or {})) for p in doc.get("properties", [])]


# What a passing smoke property must have seen on real KVM (issue 13: a pass with nothing
# checked is not a pass). One counter per property, plus a shared 2M leaf for mapping-legal:
# the only proof that the shared-side checks ever met a huge leaf.
REQUIRED_EVIDENCE = {
    "mapping-legal": ("steps_with_leaves", "shared_leaves_2m"),
    "precise-conversion": ("steps_with_leaves",),
    "data-atomic": ("reads_compared",),
}


def require_evidence(verdict: Verdict, counts: list) -> Verdict:
    for c in counts:
        if c.status != "pass":
            continue
        for key in REQUIRED_EVIDENCE.get(c.id, ()):
            if int(c.evidence.get(key, 0) or 0) <= 0:
                if verdict.exit_code == EXIT_PASS:
                    verdict.exit_code = 1
                verdict.problems.append(f"{c.id} passed with evidence {key} = {c.evidence.get(key, 'absent')}: "
                                        "nothing of that kind was checked on real KVM")
    return verdict


def render_properties(counts: list, target: str = "kvm") -> str:
    if not counts:
        return "properties: no results.json from the inner run"
    lines = [f"properties on real KVM inside the guest ({target}):"]
    for c in counts:
        tail = f"  ({c.reason})" if c.reason else ""
        lines.append(f"  {c.status.upper():<5} {c.id:<20} {c.cases:6d} cases {c.steps:8d} steps{tail}")
        if c.evidence:
            lines.append("        evidence: " + " ".join(f"{k}={v}" for k, v in c.evidence.items()))
    return "\n".join(lines)
