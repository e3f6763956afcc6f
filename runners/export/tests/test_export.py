"""tdxhp export --c: every swprot-applicable fixture exports and builds against libkvm-selftests;
the plain fixture runs on this host's /dev/kvm and passes; the same program with one expected
value changed fails (the asserts can fail); a case the flavour cannot express is refused (exit 2).
TD reproducers (test_export_tdx.py) are exported from MUT-* fixtures and a shrunk random sim
failure and compiled against stand-in TDX headers; there is no TDX host here to run them.

usage: test_export.py TDXHP_BINARY LIBKVM_DIR REPO_ROOT
"""

import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PLAIN_FIXTURE = "fixtures/cases/INV-DATA-plain-write-prefault-read.json"


def main() -> int:
    binary, libkvm, repo = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    sys.path.insert(0, str(repo / "runners" / "vm"))
    from vmdrv import fixtures   # the vm smoke's own choice of swprot-applicable fixtures
    build = repo / "runners" / "export" / "build_repro.sh"
    problems = []
    with tempfile.TemporaryDirectory(prefix="tdxhp-export-") as tmp:
        tmp = Path(tmp)

        def export(case, out, *extra):
            return subprocess.run([str(binary), "export", "--c", str(case), "-o", str(out), *extra],
                                  capture_output=True, text=True)

        def compile_c(src, out):
            return subprocess.run(["sh", str(build), str(libkvm), str(src), str(out)], capture_output=True, text=True)

        applicable, _ = fixtures.split(sorted(glob.glob(str(repo / "fixtures" / "cases" / "*.json"))))
        for case in applicable:
            name = Path(case).stem
            r = export(case, tmp / f"{name}.c", "--flavour", "swprot")
            c = compile_c(tmp / f"{name}.c", tmp / name) if r.returncode == 0 else r
            print(f"{'ok' if c.returncode == 0 else 'FAIL':4} export+build swprot {name}")
            if c.returncode != 0:
                problems.append(f"{name}: {(r.stderr + c.stderr)[-600:]}")
        if len(applicable) < 7:
            problems.append(f"only {len(applicable)} swprot-applicable fixtures (expected at least 7)")

        r = export(repo / PLAIN_FIXTURE, tmp / "plain.c", "--flavour", "plain")
        c = compile_c(tmp / "plain.c", tmp / "plain") if r.returncode == 0 else r
        if c.returncode != 0:
            problems.append(f"plain fixture did not export/build: {(r.stderr + c.stderr)[-600:]}")
        elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
            print("SKIP: no usable /dev/kvm: the plain reproducer is built, not run")
        else:
            run = subprocess.run([str(tmp / "plain")], capture_output=True, text=True, timeout=120)
            print(run.stdout)
            if run.returncode != 0 or "ok 1 step 0: guest writes 0x11 to gfn 0x100000" not in run.stdout:
                problems.append(f"plain reproducer on this host: exit {run.returncode}\n{run.stdout[-800:]}{run.stderr[-400:]}")
            # The same program expecting 0x34 where the guest wrote 0x33 must fail that step.
            src = (tmp / "plain.c").read_text()
            wrong = src.replace("0x100300, 0, 1, 0x33)", "0x100300, 0, 1, 0x34)")
            if wrong == src:
                problems.append("could not plant a wrong expectation (the step script changed shape)")
            else:
                (tmp / "wrong.c").write_text(wrong)
                compile_c(tmp / "wrong.c", tmp / "wrong")
                bad = subprocess.run([str(tmp / "wrong")], capture_output=True, text=True, timeout=120)
                if bad.returncode != 1 or "read 0x33, the oracle requires 0x34" not in bad.stdout:
                    problems.append(f"a wrong expectation did not fail: exit {bad.returncode}\n{bad.stdout[-600:]}")
                else:
                    print("ok   a planted wrong expectation fails: " +
                          next(ln for ln in bad.stdout.splitlines() if ln.startswith("not ok")))

        r = export(repo / "fixtures" / "cases" / "MUT-PROMOTE.json", tmp / "m.c", "--flavour", "swprot")
        if r.returncode != 2 or "config.backing" not in r.stderr:
            problems.append(f"MUT-PROMOTE (hugetlb gmem, accept) on swprot: expected exit 2 naming config.backing, got "
                            f"{r.returncode}: {r.stderr.strip()}")
        r = export(repo / PLAIN_FIXTURE, tmp / "x.c", "--flavour", "sev")
        if r.returncode != 2 or "--flavour" not in r.stderr:
            problems.append(f"--flavour sev: expected exit 2 naming --flavour, got {r.returncode}")
        # swprot asserts a private page's read-back (SEMANTICS.md "Guest ops"): on the TDX-model
        # sim these reads took a #VE, so before the exporter's own rule they were only printed.
        src = (tmp / "INV-DATA-private-shared-thp.c").read_text() if (tmp / "INV-DATA-private-shared-thp.c").exists() else ""
        # (a discard of shared host memory leaves private data alone: step 25)
        for want in ('expect_read(4, "guest reads gfn 0x100000", 0x100000, 0, 1, 0x1);',
                     'expect_read(13, "guest reads gfn 0x100001", 0x100001, 0, 1, 0x222);',
                     'expect_read(25, "guest reads gfn 0x100300", 0x100300, 0, 1, 0x3);'):
            if want not in src:
                problems.append(f"INV-DATA-private-shared-thp swprot: missing the asserted read {want}")
        # ... but not a page the guest never wrote (the rule covers written pages only).
        precise = tmp / "INV-PRECISE-convert-in-2m-shared-4k-private.c"
        if 'expect_read(10, "guest reads gfn 0x100060", 0x100060, 0, 0, 0);' not in (
                precise.read_text() if precise.exists() else ""):
            problems.append("INV-PRECISE-convert-in-2m-shared-4k-private swprot: step 10's never-written page "
                            "is asserted (or the step changed)")
        for argv, names in ((["export", "-o", "x.c"], "--c"), (["export", "--c", str(repo / PLAIN_FIXTURE)], "-o"),
                            (["export", "--c", str(tmp / "missing.json"), "-o", str(tmp / "y.c")], "missing.json"),
                            (["export", "--c", "a.json", "-o", "b.c", "--junk"], "--junk")):
            r = subprocess.run([str(binary), *argv], capture_output=True, text=True)
            if r.returncode != 2 or names not in r.stderr:
                problems.append(f"{' '.join(argv)}: expected exit 2 naming {names}, got {r.returncode}: {r.stderr[:200]}")
    return verdict(problems, "export")


def verdict(problems, what):
    """Prints each problem and the test's verdict; the exit code."""
    for p in problems:
        print(f"FAIL: {p}")
    print(f"{what}:", "FAIL" if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
