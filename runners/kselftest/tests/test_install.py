"""`make install` output run by the kernel's own run_kselftest.sh (linux-source-6.12): a passing
property, a failing one (a mutant switched on) and a skipped one, each reported as kselftest does.

usage: test_install.py TDXHP_BINARY [SELFTESTS_DIR]
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_kselftest(root: Path, tests: list[str], env: dict) -> tuple[int, str]:
    argv = ["sh", str(root / "run_kselftest.sh")]
    for t in tests:
        argv += ["-t", f"tdxhp:{t}"]
    r = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout + r.stderr


def main() -> int:
    binary = Path(sys.argv[1]).resolve()
    selftests = sys.argv[2] if len(sys.argv) > 2 and Path(sys.argv[2]).is_dir() else None
    problems = []
    with tempfile.TemporaryDirectory(prefix="tdxhp-kselftest-") as tmp:
        root = Path(tmp) / "install"
        argv = [sys.executable, str(HERE.parent / "install.py"), str(binary), str(root), "--seconds", "30"]
        argv += ["--selftests", selftests] if selftests else []
        subprocess.run(argv, check=True)
        listing = (root / "kselftest-list.txt").read_text().split()
        settings = (root / "tdxhp" / "settings").read_text()
        print(f"kselftest-list.txt: {len(listing)} tests; settings: {settings.strip()}")
        if "tdxhp:run_tdxhp_accept-level.sh" not in listing:
            problems.append("kselftest-list.txt lacks tdxhp:run_tdxhp_accept-level.sh")
        if not re.fullmatch(r"timeout=\d+\n", settings):
            problems.append(f"settings is not a timeout line: {settings!r}")
        env = dict(os.environ, TDXHP_SECONDS="2", TDXHP_SEED="1", TDXHP_OUT=str(Path(tmp) / "cases"))

        # sim: accept-level passes clean, and fails with MUT-INHIBIT-CLEARED (the README example).
        code, out = run_kselftest(root, ["run_tdxhp_accept-level.sh"], dict(env, TDXHP_TARGET="sim"))
        print(out)
        timeout = settings.strip().split("=")[1]
        expect = {"TAP version 13": "KTAP header", "1..1": "plan",
                  f"# timeout set to {timeout}": "runner reading tdxhp/settings",
                  "ok 1 selftests: tdxhp: run_tdxhp_accept-level.sh": "pass line",
                  "# ok 1 accept-level": "tdxhp's own KTAP, nested"}
        problems += [f"clean run: no {why} ({line!r})" for line, why in expect.items() if line not in out.splitlines()]
        code, out = run_kselftest(root, ["run_tdxhp_accept-level.sh"],
                                  dict(env, TDXHP_TARGET="sim", TDXHP_ARGS="--mutant MUT-INHIBIT-CLEARED"))
        print(out)
        if "not ok 1 selftests: tdxhp: run_tdxhp_accept-level.sh # exit=1" not in out:
            problems.append("MUT-INHIBIT-CLEARED run: no 'not ok ... # exit=1' line")
        # kvm on a host without SW-protected/TDX VMs (or without /dev/kvm): exit 4 -> SKIP.
        code, out = run_kselftest(root, ["run_tdxhp_accept-level.sh"], dict(env, TDXHP_TARGET="kvm"))
        print(out)
        # (accept-level needs a TD: SKIP here, a pass only on a TDX host)
        lines = set(out.splitlines())
        if not lines & {"ok 1 selftests: tdxhp: run_tdxhp_accept-level.sh # SKIP",
                        "ok 1 selftests: tdxhp: run_tdxhp_accept-level.sh"}:
            problems.append("kvm run: neither a pass nor a SKIP line")
    for p in problems:
        print(f"FAIL: {p}")
    print("kselftest install:", "FAIL" if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
