"""Lays tdxhp out as a kselftest collection, so the kernel's run_kselftest.sh runs it (`make install`).

  INSTALL_PATH/
    run_kselftest.sh, kselftest/         the kernel's runner, from linux-source-6.12 (kept if present)
    kselftest-list.txt                   gains one "tdxhp:run_tdxhp_<property>.sh" line per property
    tdxhp/tdxhp                          the binary
    tdxhp/run_tdxhp_<property>.sh        one test per property: KTAP on stdout, exit 0/1/4 (4 = skip)
    tdxhp/settings                       timeout= for the kselftest runner

usage: install.py TDXHP_BINARY INSTALL_PATH [--selftests DIR] [--seconds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

COLLECTION = "tdxhp"
TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
SELFTESTS = "linux-source-6.12/tools/testing/selftests"
RUNNER_FILES = ["run_kselftest.sh", "kselftest/runner.sh", "kselftest/prefix.pl", "kselftest/module.sh",
                "kselftest/ktap_helpers.sh"]
DEFAULT_SECONDS = 30
# Budget plus shrinking a failure and writing it out; the runner kills a test past this.
SHRINK_ALLOWANCE = 270

SCRIPT = """#!/bin/sh
# tdxhp property {pid} ({invariants}) as a kselftest. KTAP on stdout; exit 0 pass, 1 fail,
# 4 skip (the target lacks what the property needs), 2 usage error.
# TDXHP_TARGET: kvm (default, the running kernel) or sim; TDXHP_SECONDS: budget (default {seconds});
# TDXHP_SEED: seed (default: tdxhp's); TDXHP_OUT: where failing cases are kept;
# TDXHP_ARGS: more tdxhp run options (e.g. "--mutant MUT-PROMOTE" on sim).
here=$(cd "$(dirname "$0")" && pwd)
out=${{TDXHP_OUT:-${{TMPDIR:-/tmp}}/tdxhp-kselftest}}/{pid}
exec "$here/tdxhp" run --property {pid} --target "${{TDXHP_TARGET:-kvm}}" \\
  --seconds "${{TDXHP_SECONDS:-{seconds}}}" ${{TDXHP_SEED:+--seed "$TDXHP_SEED"}} \\
  --ktap --no-progress --out "$out" $TDXHP_ARGS
"""


def properties(binary: Path) -> list[dict]:
    r = subprocess.run([str(binary), "list", "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["properties"]


def install_runner(dest: Path, selftests: Path | None) -> str:
    """The kernel's runner files into dest, from a selftests dir or the linux-source tarball."""
    if (dest / "run_kselftest.sh").exists():
        return "kept the existing run_kselftest.sh"
    (dest / "kselftest").mkdir(parents=True, exist_ok=True)
    if selftests is not None:
        for name in RUNNER_FILES:
            if (selftests / name).exists():
                shutil.copy2(selftests / name, dest / name)
        return f"run_kselftest.sh from {selftests}"
    if not TARBALL.exists():
        raise SystemExit(f"install: no {TARBALL} (make deps installs linux-source-6.12) and no --selftests DIR")
    with tarfile.open(TARBALL) as tar:
        for name in RUNNER_FILES:
            try:
                member = tar.getmember(f"{SELFTESTS}/{name}")
            except KeyError:
                continue
            data = tar.extractfile(member).read()
            (dest / name).write_bytes(data)
            (dest / name).chmod(0o755)
    return f"run_kselftest.sh from {TARBALL}"


def install(binary: Path, dest: Path, selftests: Path | None, seconds: int) -> None:
    props = properties(binary)
    origin = install_runner(dest, selftests)
    coll = dest / COLLECTION
    if coll.exists():
        shutil.rmtree(coll)
    coll.mkdir(parents=True)
    shutil.copy2(binary, coll / "tdxhp")
    tests = []
    for p in props:
        name = f"run_tdxhp_{p['id']}.sh"
        (coll / name).write_text(SCRIPT.format(pid=p["id"], invariants=" ".join(p["invariants"]), seconds=seconds))
        (coll / name).chmod(0o755)
        tests.append(name)
    (coll / "settings").write_text(f"timeout={seconds + SHRINK_ALLOWANCE}\n")
    listing = dest / "kselftest-list.txt"
    kept = [ln for ln in (listing.read_text().splitlines() if listing.exists() else [])
            if ln and not ln.startswith(f"{COLLECTION}:")]
    listing.write_text("".join(f"{ln}\n" for ln in kept + [f"{COLLECTION}:{t}" for t in tests]))
    print(f"install: {len(tests)} tdxhp tests in {coll} ({seconds} s each, timeout {seconds + SHRINK_ALLOWANCE} s); "
          f"{origin}\n  run: {dest}/run_kselftest.sh -c {COLLECTION}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="install", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("install_path")
    ap.add_argument("--selftests", help="a kernel's tools/testing/selftests (default: linux-source-6.12's tarball)")
    ap.add_argument("--seconds", type=int, default=DEFAULT_SECONDS, help="default budget per property")
    args = ap.parse_args(argv)
    binary = Path(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"install: {binary}: not an executable tdxhp (make build)", file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("install: --seconds must be positive", file=sys.stderr)
        return 2
    install(binary, Path(args.install_path).resolve(), Path(args.selftests).resolve() if args.selftests else None,
            args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
