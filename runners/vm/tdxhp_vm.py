#!/usr/bin/python3
"""tdxhp vm: boot a kernel with private memory in QEMU and run tdxhp's kvm target inside it.

Phases (each timed): prepare-kernel, build-initramfs, boot, collect. See `--help`.
`tdxhp vm ARGS` execs this file with ARGS; it also runs on its own with /usr/bin/python3.
"""
import glob
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vmdrv import cli, commands, fixtures, initramfs, kernel, qemu, results, static_build, version  # noqa: E402
from vmdrv.util import CommandError, PhaseTimer, log  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
FIXTURE_CASES = os.path.join(SOURCE_DIR, "fixtures", "cases")
BOOT_ALLOWANCE_S = 180     # TCG boot, module loads and poweroff, with room for a busy host


def prepare_share(out_dir, plan):
    """The out dir is the 9p share: commands and case files in, results and logs out."""
    vm_dir = os.path.join(out_dir, commands.VM_DIR)
    if os.path.exists(vm_dir):
        shutil.rmtree(vm_dir)     # stale step results must never be read as this run's
    os.makedirs(os.path.join(out_dir, commands.CASES_IN), exist_ok=True)
    for host_path, name in plan.case_copies.items():
        shutil.copy2(host_path, os.path.join(out_dir, commands.CASES_IN, name))
    with open(os.path.join(vm_dir, "commands.sh"), "w") as f:
        f.write(commands.script_for(plan))
    # init runs /share/commands.sh; keep the real one under vm/ with the other run files.
    with open(os.path.join(out_dir, "commands.sh"), "w") as f:
        f.write(f"sh /share/{commands.VM_DIR}/commands.sh\n")


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main(argv):
    opts = cli.parse(argv)
    build_dir = os.path.abspath(opts.build_dir or os.path.join(SOURCE_DIR, "build-vm"))
    out_dir = os.path.abspath(opts.out or os.path.join(SOURCE_DIR, "out", "vm"))
    os.makedirs(build_dir, exist_ok=True)
    not_replayed = []
    if opts.verb == "smoke" and not opts.case:
        # Only fixtures the swprot flavour can serve; each must PASS or FAIL, not SKIP.
        opts.case, not_replayed = fixtures.split(sorted(glob.glob(os.path.join(FIXTURE_CASES, "*.json"))))
        opts.cases_required = True
        log(f"fixtures: {len(opts.case)} swprot-applicable replayed, {len(not_replayed)} not (TD/sim-only)")
    for case in opts.case:
        if not os.path.isfile(case):
            print(f"tdxhp vm: case file {case} not found", file=sys.stderr)
            return 2
    plan = commands.plan_for(opts)
    timer = PhaseTimer()
    try:
        with timer.phase("prepare-kernel"):
            if opts.kernel:
                kern = kernel.prepare_user(opts.kernel, opts.modules)
            else:
                kern = kernel.prepare_debian(build_dir, opts.jobs)
            log(f"kernel: {kern.label}")
        with timer.phase("build-programs"):
            programs = {"kvm_probe": static_build.build_probe(build_dir)}
            if plan.needs_tdxhp or opts.verb == "prepare":
                try:
                    programs["tdxhp"] = static_build.build_tdxhp(SOURCE_DIR, build_dir, opts.jobs)
                except static_build.TdxhpUnavailable as e:
                    if plan.needs_tdxhp:
                        raise
                    log(f"note: {e}")
            if plan.needs_kvm_tests:
                programs["kvm_tests"] = static_build.build_kvm_tests(SOURCE_DIR, build_dir, opts.jobs)
            if plan.repro_cases:
                programs.update(static_build.build_repros(SOURCE_DIR, build_dir,
                                                          os.path.join(build_dir, "static", "runners", "cli", "tdxhp"),
                                                          plan.repro_cases))
        with timer.phase("build-initramfs"):
            initrd = os.path.join(build_dir, "initramfs.cpio")
            loaded = initramfs.build(initrd, kern, programs)
            log(f"initramfs {initrd}: {os.path.getsize(initrd) >> 20} MiB, modules {' '.join(loaded)}")
    except (version.VersionMismatch, kernel.KernelPrepError, static_build.TdxhpUnavailable, CommandError,
            initramfs.modinfo.MissingModule) as e:
        print(f"tdxhp vm: {e}", file=sys.stderr)
        print(timer.summary(), file=sys.stderr)
        return 2
    if opts.verb == "prepare":
        print(timer.summary())
        return 0

    prepare_share(out_dir, plan)
    timeout = opts.timeout or BOOT_ALLOWANCE_S + sum(s.timeout for s in plan.steps)
    serial_log = os.path.join(out_dir, commands.VM_DIR, "serial.log")
    boot_started = time.time()
    with timer.phase("boot+run"):
        argv_q = qemu.qemu_argv(kern.bzimage, initrd, out_dir, memory=opts.memory, smp=opts.smp,
                                accel=opts.accel)
        qemu_rc, timed_out = qemu.boot(argv_q, serial_log, timeout, echo_all=opts.verbose)
    with timer.phase("collect"):
        steps = results.parse_steps(read_text(os.path.join(out_dir, commands.VM_DIR, "steps.tsv")) or "")
        dmesg = read_text(os.path.join(out_dir, "dmesg.txt"))
        if dmesg is not None:
            shutil.move(os.path.join(out_dir, "dmesg.txt"), os.path.join(out_dir, commands.VM_DIR, "dmesg.txt"))
        cases = [c for sub in {commands.run_out_subdir(s.name) for s in plan.steps}
                 for c in results.saved_cases(os.path.join(out_dir, sub), since=boot_started)]
        verdict = results.decide([s.name for s in plan.steps], steps, read_text(serial_log) or "", dmesg,
                                 timed_out, qemu_rc, sorted(cases),
                                 skip_ok={s.name for s in plan.steps if s.skip_ok})
        if opts.verb == "smoke":
            verdict = results.require_ran(verdict)
    run_steps = [s.name for s in plan.steps if s.name == "run" or s.name.startswith("run-")]
    if run_steps:
        counts = []
        for name in run_steps:
            path = os.path.join(out_dir, commands.run_out_subdir(name), "results.json")
            fresh = os.path.exists(path) and os.path.getmtime(path) >= boot_started - 1
            counts += results.property_counts(read_text(path) if fresh else None)   # stale: not ours
        print(results.render_properties(counts))
        if opts.verb == "smoke":
            verdict = results.require_evidence(verdict, counts)
    if not_replayed:  # the replayed fixtures are the replay-* guest steps below
        print("fixtures not replayed on real KVM (swprot):")
        for path, reason in not_replayed:
            print(f"  {os.path.splitext(os.path.basename(path))[0]}: {reason}")
    print(results.render(verdict))
    print(f"results, step logs, serial console and kernel log: {out_dir}/{commands.VM_DIR}/")
    print(timer.summary())
    return verdict.exit_code


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
