"""What runs inside the guest: the steps of one `tdxhp vm` invocation and their shell script.

Pure functions of the parsed options, so argument pass-through is unit-tested without a VM.
The script goes to the share as commands.sh; the guest's /init runs it.
"""
import os
import shlex
from dataclasses import dataclass, field

GUEST_SHARE = "/share"
GUEST_TDXHP = "/tdxhp/bin/tdxhp"
GUEST_PROBE = "/tdxhp/bin/kvm_probe"
GUEST_KVM_TESTS = "/tdxhp/bin/kvm_tests"
VM_DIR = "vm"                       # under the out dir: steps.tsv, step logs, dmesg, serial log
CASES_IN = "vm/cases-in"            # case files copied in for replay

# The properties (properties/registry.cpp ids) holding the invariants issue 6 makes real on
# the swprot flavour: INV-ATTR/INV-CONTIG, INV-PRECISE/INV-NOOVERZAP, INV-DATA/INV-ATOMIC.
SWPROT_PROPERTIES = ("mapping-legal", "precise-conversion", "data-atomic")


@dataclass
class Step:
    name: str
    argv: list
    timeout: int                    # seconds inside the guest before the step is killed
    stop_on_failure: bool = False   # later steps are pointless (the probe: no SW-protected KVM)
    skip_ok: bool = False           # exit 4 (nothing ran) is a SKIP: a replayed case swprot cannot serve


@dataclass
class Plan:
    steps: list
    case_copies: dict = field(default_factory=dict)   # {host path: name under CASES_IN}
    needs_tdxhp: bool = True
    needs_kvm_tests: bool = False   # the static kvm_tests binary goes into the initramfs
    repro_cases: dict = field(default_factory=dict)   # {host case path: program name}: exported C reproducers


def probe_step() -> Step:
    return Step("probe", [GUEST_PROBE], timeout=60, stop_on_failure=True)


def run_argv(properties, seconds, cases, seed, extra, out=GUEST_SHARE) -> list:
    argv = [GUEST_TDXHP, "run", "--target", "kvm"]
    for prop in properties:
        argv += ["--property", prop]
    if seconds is not None:
        argv += ["--seconds", str(seconds)]
    if cases is not None:
        argv += ["--cases", str(cases)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    argv += ["--out", out]
    return argv + list(extra)


def run_out_subdir(step_name: str) -> str:
    """Where a run step's results.json and cases/ land, relative to the out dir."""
    return "" if step_name == "run" else step_name


def run_timeout(seconds, cases) -> int:
    # Exploring is bounded by --seconds; shrinking a failure and TCG's slowness are not, so
    # allow generous slack before declaring the run hung. --cases has no time bound of its own.
    if seconds is not None:
        return int(seconds) * 3 + 300
    return 3600 if cases is not None else 1200


def unique_case_names(paths) -> dict:
    """{host path: guest file name}: basenames, disambiguated when two cases share one."""
    names, used = {}, set()
    for path in paths:
        base = os.path.basename(path)
        name, n = base, 1
        while name in used:
            n += 1
            stem, ext = os.path.splitext(base)
            name = f"{stem}-{n}{ext}"
        used.add(name)
        names[path] = name
    return names


OBSERVER_OFF = "observer-off"     # step name and out subdir


def observer_off_step(seed) -> Step:
    """Real KVM with the leaf trace switched off (TDXHP_TEST_NO_LEAF_TRACE, a test switch of the
    kvm target): mapping-legal must FAIL saying its observer saw nothing (issue 13). The step
    passes only on that failure, so a blind observer can never pass the smoke unnoticed."""
    out = f"{GUEST_SHARE}/{OBSERVER_OFF}"
    run = run_argv(["mapping-legal"], None, 3, seed if seed is not None else 1, ["--no-progress"], out=out)
    script = ("env TDXHP_TEST_NO_LEAF_TRACE=1 " + " ".join(shlex.quote(a) for a in run) + "; rc=$?; "
              f"if [ $rc -eq 1 ] && grep -q 'observer saw nothing' {out}/results.json; then "
              "echo 'observer-off: mapping-legal failed as it must: observer saw nothing'; exit 0; fi; "
              "echo \"observer-off: expected exit 1 with 'observer saw nothing', got exit $rc\"; exit 1")
    return Step(OBSERVER_OFF, ["sh", "-c", script], timeout=900)


KVM_TESTS = "kvm-tests"
# The real-KVM gtest groups that SKIP on a host without SW-protected VMs or a TDP MMU: inside
# the guest both exist, so every one of them must run (issue 13).
KVM_TEST_GROUPS = "KvmSwprot.*:MmuTraceLive.*"


def kvm_tests_step() -> Step:
    log = "/tmp/kvm_tests.log"   # gtest's summary lines: "[  PASSED  ] 8 tests.", "[  SKIPPED ] 1 test"
    script = (f"{GUEST_KVM_TESTS} --gtest_filter={shlex.quote(KVM_TEST_GROUPS)} > {log} 2>&1; rc=$?; cat {log}; "
              "[ $rc -eq 0 ] || exit $rc; "
              f"if grep -qF '[  SKIPPED ]' {log}; then echo 'kvm-tests: a real-KVM test SKIPped inside the guest'; exit 1; fi; "
              f"grep -qF '[  PASSED  ]' {log} || {{ echo 'kvm-tests: no test ran'; exit 1; }}")
    return Step(KVM_TESTS, ["sh", "-c", script], timeout=900)


REPRO_PREFIX = "repro-"


def repro_steps(repro_cases: dict) -> list:
    """Each fixture exported with `tdxhp export --c`, built static, run as its own program: KTAP
    on the console, exit 0 only when every step did what the oracle allows (4 = SKIP fails too)."""
    return [Step(name, [f"/tdxhp/bin/{name}"], timeout=300) for name in repro_cases.values()]


def replay_steps(case_names: dict, trace: bool, extra, skip_ok: bool = True) -> list:
    """skip_ok=False: the case was chosen because swprot can serve it, so a SKIP fails."""
    steps = []
    for name in case_names.values():
        argv = [GUEST_TDXHP, "replay", f"{GUEST_SHARE}/{CASES_IN}/{name}", "--target", "kvm"]
        if trace:
            argv.append("--trace")
        steps.append(Step(f"replay-{os.path.splitext(name)[0]}", argv + list(extra), timeout=600, skip_ok=skip_ok))
    return steps


def plan_for(opts) -> Plan:
    """opts: the parsed argparse namespace of tdxhp_vm.py (verb plus pass-through options)."""
    extra = list(getattr(opts, "passthrough", []) or [])
    steps = [probe_step()]
    if opts.verb in ("probe", "prepare"):     # prepare builds tdxhp when it can, boots nothing
        return Plan(steps, needs_tdxhp=False)
    if opts.verb == "run":
        steps.append(Step("run", run_argv(opts.property or [], opts.seconds, opts.cases, opts.seed, extra),
                          run_timeout(opts.seconds, opts.cases)))
        return Plan(steps)
    if opts.verb == "replay":
        names = unique_case_names(opts.case)
        return Plan(steps + replay_steps(names, opts.trace, extra), case_copies=names)
    if opts.verb == "smoke":
        # One run per property, each with the whole budget: a single run spends its budget on
        # the properties in turn and the last ones may get no case at all.
        props = opts.property or list(SWPROT_PROPERTIES)
        seconds = opts.seconds if opts.seconds is not None else 30
        for prop in props:
            name = f"run-{prop}"
            steps.append(Step(name, run_argv([prop], seconds, opts.cases, opts.seed, extra,
                                             out=f"{GUEST_SHARE}/{run_out_subdir(name)}"),
                              run_timeout(seconds, opts.cases)))
        if "mapping-legal" in props:
            steps.append(observer_off_step(opts.seed))
        steps.append(kvm_tests_step())
        names = unique_case_names(opts.case)
        required = bool(getattr(opts, "cases_required", False))
        # The fixtures chosen as swprot-applicable also run as exported C reproducers (issue 17).
        repros = {path: REPRO_PREFIX + os.path.splitext(name)[0] for path, name in names.items()} if required else {}
        return Plan(steps + replay_steps(names, opts.trace, extra, skip_ok=not required) + repro_steps(repros),
                    case_copies=names, needs_kvm_tests=True, repro_cases=repros)
    raise ValueError(f"unknown verb {opts.verb}")


def script_for(plan: Plan) -> str:
    """The guest shell script: runs each step with a timeout, logs it, records `name rc secs`."""
    lines = [
        "# generated by tdxhp_vm.py: one line per step in vm/steps.tsv (name, exit code, seconds)",
        f"mkdir -p {GUEST_SHARE}/{VM_DIR}/steps",
        f": > {GUEST_SHARE}/{VM_DIR}/steps.tsv",
        "step() {",
        "  name=$1; limit=$2; shift 2",
        "  echo \"TDXHP-VM-STEP-BEGIN $name\"",
        "  start=$(cut -d' ' -f1 /proc/uptime)",
        # tee keeps the console live; the rc file carries the exit code through the pipe.
        f"  {{ timeout -s KILL \"$limit\" \"$@\"; echo $? > /tmp/rc; }} 2>&1 | tee {GUEST_SHARE}/{VM_DIR}/steps/$name.log",
        "  rc=$(cat /tmp/rc)",
        "  end=$(cut -d' ' -f1 /proc/uptime)",
        f"  echo \"$name $rc $(awk \"BEGIN {{print $end - $start}}\")\" >> {GUEST_SHARE}/{VM_DIR}/steps.tsv",
        "  echo \"TDXHP-VM-STEP-END $name rc=$rc\"",
        "  return $rc",
        "}",
    ]
    for step in plan.steps:
        call = f"step {shlex.quote(step.name)} {step.timeout} " + " ".join(shlex.quote(a) for a in step.argv)
        if step.stop_on_failure:
            call += f" || {{ echo 'TDXHP-VM: {step.name} failed, later steps not run'; exit 0; }}"
        lines.append(call)
    return "\n".join(lines) + "\n"
