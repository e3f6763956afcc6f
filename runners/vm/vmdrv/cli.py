"""Options of `tdxhp vm`: verb, the kernel under test, and the run/replay options passed inside."""
import argparse

VERBS = ("run", "replay", "probe", "smoke", "prepare")

EPILOG = """verbs:
  run      (default) probe, then `tdxhp run --target kvm` with the given options
  replay   probe, then `tdxhp replay CASE --target kvm` for each CASE
  smoke    probe, the issue-6 swprot properties with a small fixed budget, and replay of --case files
  probe    boot and run only the KVM probe (SW-protected VM type, guest_memfd, pages_2m)
  prepare  prepare the kernel, modules and initramfs, do not boot
Arguments after `--` go verbatim to the inner tdxhp command.
exit codes: the first failing guest step's (tdxhp: 1 property failure, 2 usage, 4 all skipped),
  0 when every step passed, 5 when the VM gave no verdict (boot failure, panic, timeout).
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tdxhp vm", description="Boot a kernel in QEMU (TCG, nested SVM) and run "
                                "tdxhp's kvm target inside it.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel", help="bzImage of a kernel under test (default: Debian 6.12 + SW_PROTECTED_VM kvm)")
    p.add_argument("--modules", help="its lib/modules/<release> directory (with modules.dep)")
    p.add_argument("--build-dir", help="cache and build dir (default: <repo>/build-vm)")
    p.add_argument("--out", help="host dir for results, case files and logs; shared with the guest over 9p "
                   "(default: out/vm)")
    p.add_argument("--timeout", type=int, help="seconds before QEMU is killed (default: from the steps' budgets)")
    p.add_argument("--jobs", type=int, default=2, help="parallel jobs for the kvm.ko and tdxhp builds")
    p.add_argument("--memory", default="4G")
    p.add_argument("--smp", type=int, default=2)
    # Single-threaded TCG by default: with thread=multi (QEMU 7.2) the guest kernel hit an
    # int3 Oops in __schedule while tdxhp toggled tracepoints (text_poke_bp under MTTCG) and
    # the run was lost; with thread=single the same smoke ran to the end.
    p.add_argument("--accel", default="tcg,thread=single", help="QEMU -accel value (default %(default)s)")
    p.add_argument("--verbose", action="store_true", help="echo the whole serial console")
    # Pass-through run/replay options (same names as the host CLI).
    p.add_argument("--property", action="append", help="property id (repeatable)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=int)
    budget.add_argument("--cases", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--trace", action="store_true", help="replay: step trace")
    p.add_argument("--case", action="append", default=[], help="case file to replay (repeatable; "
                   "positional CASE arguments after `replay` work too)")
    p.add_argument("verb", nargs="?", default="run", choices=VERBS)
    p.add_argument("cases_positional", nargs="*", metavar="CASE")
    return p


def parse(argv):
    """Parses argv; everything after `--` is kept in .passthrough for the inner tdxhp."""
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    else:
        passthrough = []
    p = parser()
    opts = p.parse_intermixed_args(argv)
    opts.passthrough = passthrough
    opts.case = list(opts.case) + list(opts.cases_positional)
    if opts.cases_positional and opts.verb not in ("replay", "smoke"):
        p.error(f"case files given but verb is {opts.verb} (use `replay CASE...`)")
    if opts.verb == "replay" and not opts.case:
        p.error("replay needs at least one CASE file")
    if opts.modules and not opts.kernel:
        p.error("--modules needs --kernel")
    return opts
