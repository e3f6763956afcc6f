"""Reading what `tdxhp run` reported, and turning crashes, hangs and bad output into failures."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runners.py import provenance
from runners.py.invoke import EXIT_FAIL, EXIT_PASS, EXIT_SKIP, Invocation


class MalformedOutput(Exception):
    """tdxhp's JSON is unreadable or lacks a field; the message names the run and the field."""


@dataclass
class Failure:
    signature: str             # de-duplication key, "INV-X/prop-id/<hash>" from tdxhp
    kind: str                  # property | crash | hang | malformed | replay
    target: str
    property: str = ""
    invariant: str = ""
    message: str = ""
    step: int | None = None
    shrunk_steps: int | None = None
    case_file: str | None = None   # absolute path of the shrunk case tdxhp wrote, if any

    @staticmethod
    def from_dict(d: dict) -> "Failure":
        return Failure(**{k: d.get(k) for k in Failure.__dataclass_fields__})


@dataclass
class PropertyResult:
    id: str
    invariants: list[str]
    status: str                # pass | fail | skip
    reason: str = ""
    cases: int = 0
    steps: int = 0
    seconds: float = 0.0


@dataclass
class RunOutcome:
    """Everything one tdxhp invocation produced, partial results included."""
    label: str
    target: str
    seed: int | None
    exit_code: int | None
    signal: str | None = None
    timed_out: bool = False
    seconds: float = 0.0
    verdict: str = ""          # tdxhp's verdict; "crash"/"hang"/"malformed" when we had to decide
    properties: list[PropertyResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    scenarios_reached: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # human-readable, for progress and report
    provenance: dict = field(default_factory=dict)      # results.json's: target flavour, kernel, TDX module

    @property
    def all_skipped(self) -> bool:
        return not self.failures and bool(self.properties) and all(p.status == "skip" for p in self.properties)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "RunOutcome":
        out = RunOutcome(**{k: d[k] for k in ("label", "target", "seed", "exit_code")})
        for k in ("signal", "timed_out", "seconds", "verdict", "scenarios_reached", "problems", "provenance"):
            if k in d:
                setattr(out, k, d[k])
        out.properties = [PropertyResult(**p) for p in d.get("properties", [])]
        out.failures = [Failure.from_dict(f) for f in d.get("failures", [])]
        return out


def _need(obj, key: str, kind, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise MalformedOutput(f"{where}: field '{key}' missing")
    value = obj[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedOutput(f"{where}: field '{key}' should be {kind.__name__}, got {json.dumps(value)[:60]}")
    return value


def parse_run_json(text: str, where: str, base_dir: Path) -> dict:
    """Validates tdxhp's run JSON; returns {properties, failures, verdict, scenarios_reached}.

    Relative case_file paths are resolved against base_dir (tdxhp's --out dir) first,
    then the current directory.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedOutput(f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if _need(doc, "tdxhp", int, where) != 1:
        raise MalformedOutput(f"{where}: field 'tdxhp' is {doc['tdxhp']}, this orchestrator reads version 1")
    verdict = _need(doc, "verdict", str, where)
    props, failures = [], []
    target = doc.get("target", "")
    for i, p in enumerate(_need(doc, "properties", list, where)):
        pw = f"{where}: properties[{i}]"
        pr = PropertyResult(
            id=_need(p, "id", str, pw),
            invariants=list(p.get("invariants", [])),
            status=_need(p, "status", str, pw),
            reason=p.get("reason", "") or "",
            cases=int(p.get("cases", 0) or 0),
            steps=int(p.get("steps", 0) or 0),
            seconds=float(p.get("seconds", 0.0) or 0.0))
        if pr.status not in ("pass", "fail", "skip"):
            raise MalformedOutput(f"{pw}: status '{pr.status}' is not pass, fail or skip")
        props.append(pr)
        if pr.status == "fail":
            f = p.get("failure")
            if not isinstance(f, dict):
                raise MalformedOutput(f"{pw}: status is fail but field 'failure' is missing")
            fw = pw + ".failure"
            invariant = _need(f, "invariant", str, fw)
            message = f.get("message", "") or ""
            signature = f.get("signature") or fallback_signature(invariant, pr.id, message)
            failures.append(Failure(
                signature=signature, kind="property", target=target, property=pr.id,
                invariant=invariant, message=message, step=f.get("step"),
                shrunk_steps=f.get("shrunk_steps"),
                case_file=_resolve_case(f.get("case_file"), base_dir)))
    reached = doc.get("scenarios_reached", {}) or {}
    if not isinstance(reached, dict):
        raise MalformedOutput(f"{where}: field 'scenarios_reached' should be an object")
    return {"verdict": verdict, "properties": props, "failures": failures, "target": target,
            "scenarios_reached": {str(k): int(v) for k, v in reached.items()},
            "provenance": provenance.of_results(doc)}


def fallback_signature(invariant: str, prop: str, message: str) -> str:
    """Same shape as tdxhp's signature, for outputs that lack one (older CLI)."""
    return f"{invariant}/{prop}/{hashlib.sha1(message.encode()).hexdigest()[:10]}"


def _resolve_case(path: str | None, base_dir: Path) -> str | None:
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        return str(p)
    for base in (base_dir, base_dir.parent, Path.cwd()):
        if (base / p).exists():
            return str((base / p).resolve())
    return str((base_dir / p).resolve())


def collect_run(inv: Invocation, tdxhp_out: Path, target: str, seed: int | None,
                property_filter: str | None = None) -> RunOutcome:
    """Reads results.json (or stdout) of a `tdxhp run`; never raises for a bad run.

    A crash (signal) or hang keeps whatever partial results were written and adds a
    failure for the process itself; unreadable output becomes a 'malformed' failure.
    """
    out = RunOutcome(label=inv.label, target=target, seed=seed, exit_code=inv.returncode,
                     signal=inv.signal_name, timed_out=inv.timed_out, seconds=round(inv.seconds, 3))
    parsed, parse_error = None, "no results.json and no output at all"
    results_file = tdxhp_out / "results.json"
    sources = [p for p in (results_file, inv.stdout_path) if p.exists()]  # a kill may have left neither
    for source in sources:
        try:
            parsed = parse_run_json(source.read_text(errors="replace"), f"{inv.label}: {source}", tdxhp_out)
            break
        except MalformedOutput as e:
            parse_error = str(e) if parse_error.startswith("no results.json") else parse_error
    if parsed:
        out.verdict = parsed["verdict"]
        out.properties = parsed["properties"]
        out.failures = parsed["failures"]
        out.scenarios_reached = parsed["scenarios_reached"]
        out.provenance = parsed["provenance"]
        for f in out.failures:
            f.target = f.target or target
    scope = property_filter or "all"
    if inv.timed_out or inv.signal_name:
        what = "hang" if inv.timed_out else "crash"
        cause = f"no result after {inv.seconds:.0f} s, killed" if inv.timed_out else f"killed by {inv.signal_name}"
        detail = inv.stderr_tail(4).replace("\n", " | ")
        out.verdict = what
        out.failures.append(Failure(
            signature=f"{what.upper()}/{target}/{scope}/{'timeout' if inv.timed_out else inv.signal_name}",
            kind=what, target=target, property=scope,
            message=f"tdxhp {cause}" + (f"; stderr: {detail}" if detail else "")
                    + ("" if parsed else "; no readable results"),
            case_file=_in_flight_case(tdxhp_out, out.failures)))
        out.problems.append(f"{inv.label}: tdxhp {cause}" + ("; partial results kept" if parsed else ""))
    elif inv.returncode is not None and inv.returncode not in (EXIT_PASS, EXIT_FAIL, EXIT_SKIP):
        # 3 is tdxhp's internal error, 130 an interruption nobody here asked for.
        detail = inv.stderr_tail(4).replace("\n", " | ")
        out.failures.append(Failure(
            signature=f"TDXHP-EXIT/{target}/{scope}/exit{inv.returncode}", kind="crash", target=target,
            property=scope, message=f"tdxhp exited {inv.returncode}" + (f"; stderr: {detail}" if detail else ""),
            case_file=_in_flight_case(tdxhp_out, out.failures)))
        out.verdict = out.verdict if parsed else "error"
        out.problems.append(f"{inv.label}: tdxhp exited {inv.returncode}"
                            + ("; partial results kept" if parsed else "; no readable results"))
    elif not parsed:
        out.verdict = "malformed"
        out.failures.append(Failure(
            signature=f"TDXHP-OUTPUT/{target}/{scope}/malformed", kind="malformed", target=target,
            property=scope, message=f"{parse_error} (exit code {inv.returncode})"))
        out.problems.append(f"malformed output from tdxhp: {parse_error}")
    elif inv.returncode == EXIT_FAIL and not out.failures:
        out.failures.append(Failure(
            signature=f"TDXHP-OUTPUT/{target}/{scope}/exit1-without-failure", kind="malformed",
            target=target, property=scope,
            message="tdxhp exited 1 (property failure) but listed no failing property"))
        out.problems.append(f"{inv.label}: exit code 1 but no failing property in the JSON")
    elif inv.returncode in (EXIT_PASS, EXIT_SKIP) and out.failures:
        out.problems.append(f"{inv.label}: exit code {inv.returncode} but the JSON lists failures; "
                            f"the failures count")
    return out


def failures_from_case_files(tdxhp_out: Path, target: str) -> list[Failure]:
    """Failures tdxhp finished (shrunk and saved) before it was killed, read back from their case
    files when no results.json was written; a case without a violation was only running."""
    found = []
    for path in sorted((tdxhp_out / "cases").glob("*.json")) if (tdxhp_out / "cases").is_dir() else []:
        try:
            doc = json.loads(path.read_text(errors="replace"))
            v, prop = doc.get("violation"), doc.get("property", "")
            if not isinstance(v, dict) or not v.get("invariant"):
                continue
            digest = path.stem.rsplit("_", 1)[-1]
            found.append(Failure(signature=f"{v['invariant']}/{prop}/{digest}", kind="property",
                                 target=doc.get("target", target), property=prop, invariant=v["invariant"],
                                 message=str(doc.get("description", ""))[:500], step=v.get("step"),
                                 shrunk_steps=len(doc.get("ops", [])), case_file=str(path.resolve())))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return found


def _in_flight_case(tdxhp_out: Path, known: list[Failure]) -> str | None:
    """The newest case file no reported failure claims: the case that was running at the crash."""
    claimed = {f.case_file for f in known if f.case_file}
    cases = [p for p in (tdxhp_out / "cases").glob("*.json") if str(p.resolve()) not in claimed] \
        if (tdxhp_out / "cases").is_dir() else []
    if not cases:
        return None
    return str(max(cases, key=lambda p: p.stat().st_mtime).resolve())
