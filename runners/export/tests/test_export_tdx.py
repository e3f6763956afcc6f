"""tdxhp export --c, tdx flavour. No TDX host here, so the reproducers are compiled, never run:
every MUT-* fixture the flavour can express, and a case a random `tdxhp run --target sim
--mutant MUT-...` found and shrank, exports by default as a TD and compiles (-Wall -Werror)
against linux-source-6.12's libkvm headers plus the stand-in TDX headers in fake_tdx/ (the
intel/tdx tree's signatures; their comments cite the files). The stand-ins must reject a call
with a wrong signature, the generated text must be one function per op kind with the steps as
a linear script, and known expectations must be asserted (FIXED; where KVM may choose the
level, CHOICE, printed, and what follows from it IF_SAME_CHOICE). Cases with pin/inject/queued/slot ops are refused naming the op.

usage: test_export_tdx.py TDXHP_BINARY LIBKVM_DIR REPO_ROOT
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_export import verdict  # noqa: E402

MIN_MUT_EXPORTED = 15   # MUT-* fixtures without pin/inject/queued/slot ops or sim-only config (17 today)
# Definitions the TD program holds once each, one per op kind (td_template.h, c_template.h).
OP_FUNCTIONS = ("op_convert", "op_convert_in_place", "op_punch", "op_prefault", "op_discard_shared",
                "expect_access", "expect_accept", "expect_map_gpa")
CALL_FOR = {"convert": "td_convert(", "punch": "op_punch(", "prefault": "op_prefault(",
            "discard-shared": "op_discard_shared(", "access": "expect_access(", "accept": "expect_accept(",
            "map-gpa": "expect_map_gpa("}
# Stand-ins must fail these edits: a call of the tree's library with a wrong argument count.
BROKEN_CALLS = (("td_initialize(vm, VM_MEM_SRC_ANONYMOUS, 0);", "td_initialize(vm, VM_MEM_SRC_ANONYMOUS);"),
                ("s->gmem_offset * PAGE_4K, GMEM_FLAGS, GMEM_ORDER);", "s->gmem_offset * PAGE_4K, GMEM_FLAGS);"),
                ("tdg_mem_page_accept(gpa, s->level)", "tdg_mem_page_accept(gpa)"))
RANDOM_MUTANTS = ("MUT-IGNORE-ACCEPT", "MUT-NO-SPLIT-ZAP", "MUT-PROMOTE", "MUT-HEAD-ONLY")


def run_steps_body(src):
    m = re.search(r"static void run_steps\(void\)\n\{\n(.*?)\n\}\n", src, re.S)
    return m.group(1) if m else ""


def text_problems(name, src, ops):
    """The generated text: header honesty, one function per op kind, a linear step script."""
    p = []
    if "NOT RUN ON A TDX HOST" not in src:
        p.append(f"{name}: the header does not say the TD reproducer was never run on a TDX host")
    for fn in OP_FUNCTIONS:
        n = len(re.findall(rf"^static (?:__attribute__\(\(unused\)\) )?(?:int|void) {fn}\(", src, re.M))
        if n != 1:
            p.append(f"{name}: {fn} is defined {n} times (one function per op kind)")
    lines = [ln.strip() for ln in run_steps_body(src).splitlines()]
    if len(lines) != 2 * len(ops):
        p.append(f"{name}: run_steps has {len(lines)} lines for {len(ops)} steps (a comment and a call each)")
        return p
    for i, op in enumerate(ops):
        comment, call = lines[2 * i], lines[2 * i + 1]
        if not comment.startswith(f"/* step {i}: "):
            p.append(f"{name}: step {i}'s comment is {comment!r}")
        if CALL_FOR[op["op"]] not in call or not re.search(rf"\b{i}, ", call):
            p.append(f"{name}: step {i} ({op['op']}) is run by {call!r}")
    rows = re.findall(r"^\t\{ G_\w+.*/\* step (\d+): ", src, re.M)
    if rows != [str(i) for i in range(len(ops))]:
        p.append(f"{name}: guest_steps[] rows {rows} do not follow the steps")
    return p


def main() -> int:
    binary, libkvm, repo = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    build = repo / "runners" / "export" / "build_repro.sh"
    env = dict(os.environ, TDX_STANDIN=str(repo / "runners" / "export" / "tests" / "fake_tdx"))
    problems = []

    def export(case, out, *extra):
        return subprocess.run([str(binary), "export", "--c", str(case), "-o", str(out), *extra],
                              capture_output=True, text=True)

    def compile_td(src, out):
        return subprocess.run(["sh", str(build), str(libkvm), str(src), str(out)], capture_output=True, text=True,
                              env=env)

    def export_and_compile(case, tmp):
        name = Path(case).stem
        r = export(case, tmp / f"{name}.c")
        if r.returncode == 2:
            return None, r.stderr.strip()
        if r.returncode != 0 or "(tdx," not in r.stdout:
            problems.append(f"{name}: export exit {r.returncode} (expected the tdx flavour by default): "
                            f"{r.stdout.strip()} {r.stderr.strip()}")
            return None, ""
        c = compile_td(tmp / f"{name}.c", tmp / f"{name}.o")
        if c.returncode != 0:
            problems.append(f"{name}: the TD reproducer does not compile:\n{c.stderr[-1500:]}")
            return None, ""
        src = (tmp / f"{name}.c").read_text()
        problems.extend(text_problems(name, src, json.loads(Path(case).read_text())["ops"]))
        return src, ""

    with tempfile.TemporaryDirectory(prefix="tdxhp-export-tdx-") as tmp:
        tmp = Path(tmp)
        exported, refused = {}, {}
        for case in sorted(glob.glob(str(repo / "fixtures" / "cases" / "MUT-*.json"))):
            src, why = export_and_compile(case, tmp)
            name = Path(case).stem
            if src is not None:
                exported[name] = src
            elif why:
                refused[name] = why
                if not re.search(r"(ops\[\d+\] |tdx: config\.)", why):
                    problems.append(f"{name}: refused without naming the op or config field: {why}")
        print(f"MUT-* fixtures: {len(exported)} exported and compiled as TDs, {len(refused)} refused")
        for name, why in sorted(refused.items()):
            print(f"  refused {name}: {why.split(': ', 1)[-1]}")
        if len(exported) < MIN_MUT_EXPORTED:
            problems.append(f"only {len(exported)} MUT-* fixtures exported as TDs (expected at least {MIN_MUT_EXPORTED})")

        # Expectations the oracle fixes are asserted; where KVM may choose the level, printed only.
        wants = {
            # the 2M accept meets the page table the 4K build page left; the next touch is a #VE
            "MUT-PROMOTE": ['expect_accept(2, "guest accepts gfn 0x100000 at 2M", 0, FIXED, 0xc0000b0b00000001);',
                            'expect_access(3, "guest reads gfn 0x100000", 0, FIXED, WANT_VE, 0, 0);'],
            # the access faulted 2M (KVM may map 4K): the 2M accept's status is KVM's choice, and
            # the neighbour's read-back after the 4K conversion holds if KVM chose as the sim did
            "MUT-NO-SPLIT-ZAP": ['expect_accept(1, "guest accepts gfn 0x100000 at 2M", 0, CHOICE, 0x0);',
                                 'expect_access(4, "guest reads gfn 0x100005", 0, IF_SAME_CHOICE, WANT_NO_VE, 1, 0x5555);'],
        }
        # A 4K accept meets a PENDING leaf whichever level the fault chose: asserted.
        wants["SC-ACCEPT4K-AFTER"] = ['expect_accept(1, "guest accepts gfn 0x100001 at 4K", 0, FIXED, 0x0);',
                                      'expect_access(3, "guest reads gfn 0x100001", 0, FIXED, WANT_NO_VE, 1, 0x1);']
        sc = repo / "fixtures" / "cases" / "SC-ACCEPT4K-AFTER.json"
        exported["SC-ACCEPT4K-AFTER"] = export_and_compile(sc, tmp)[0] or ""
        for name, lines in wants.items():
            for line in lines:
                if line not in exported.get(name, ""):
                    problems.append(f"{name}: missing {line}")
        for name in ("MUT-NO-BUSY-RETRY", "MUT-CACHE-RACE"):
            if name not in refused:
                problems.append(f"{name} (inject / a queued op): expected a refusal naming the op")

        # Every op kind a TD expresses, in one case (tests/td_all_ops.json).
        all_ops = repo / "runners" / "export" / "tests" / "td_all_ops.json"
        src, why = export_and_compile(all_ops, tmp)
        if src is None:
            problems.append(f"td_all_ops.json did not export as a TD: {why}")
        elif 'expect_access(8, "guest reads gfn 0x100000", 0, FIXED, WANT_NO_VE, 1, 0x7);' not in src:
            problems.append("td_all_ops.json: the read of the page the guest accepted and wrote is not asserted")
        else:
            print(f"ok   every op kind ({', '.join(sorted(CALL_FOR))}) exports as a TD and compiles")

        # The stand-ins constrain the calls: a wrong argument count must not compile.
        base = exported.get("MUT-PROMOTE", "")
        for good, bad in BROKEN_CALLS:
            if good not in base:
                problems.append(f"could not plant {bad!r}: {good!r} is not in the MUT-PROMOTE reproducer")
                continue
            (tmp / "broken.c").write_text(base.replace(good, bad))
            if compile_td(tmp / "broken.c", tmp / "broken.o").returncode == 0:
                problems.append(f"the stand-in headers accept {bad!r}")
        print(f"ok   {len(BROKEN_CALLS)} calls with a wrong signature are rejected by the stand-in headers")

        # A failure a random sim run found under a mutant, shrunk, exports as a TD and compiles.
        found = None
        for mutant in RANDOM_MUTANTS:
            out = tmp / f"run-{mutant}"
            subprocess.run([str(binary), "run", "--target", "sim", "--mutant", mutant, "--cases", "300",
                            "--seed", "7", "--out", str(out), "--no-progress"], capture_output=True, text=True)
            for case in sorted(glob.glob(str(out / "cases" / "*.json"))):
                src, why = export_and_compile(case, tmp)
                print(f"{'ok  ' if src else 'skip'} random {mutant} case {Path(case).name}: "
                      f"{'exported and compiled as a TD' if src else why}")
                if src:
                    found = case
                    break
            if found:
                break
        if not found:
            problems.append(f"no shrunk random failure under {', '.join(RANDOM_MUTANTS)} exported as a TD")

    return verdict(problems, "export tdx")


if __name__ == "__main__":
    sys.exit(main())
