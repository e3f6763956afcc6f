"""Runs every command shown in README.md and the runners' READMEs, with short budgets, so the
examples cannot rot: an example that tdxhp refuses (exit 2), that crashes, hangs, or fails on
the clean code (exit 1 without a mutant) fails this test. Exit 0 and 4 (all skipped) are fine,
and 1 where the example switches a mutant on.

Not run, and listed as such: `make` lines (they are what runs this), `tdxhp vm` (boots QEMU;
`make vm-smoke` covers it), synopsis lines ([...] options), and commands with a <placeholder>.

usage: readme_commands.py TDXHP_BINARY REPO_ROOT
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

READMES = ["README.md", "runners/py/README.md", "runners/vm/README.md", "runners/kvm/README.md"]
COMMAND = re.compile(r"^(tdxhp |/usr/bin/python3 -m |python3 -m |make )")
# Budgets shrunk so the whole file runs in a couple of minutes; ids and paths stay as written.
# (--seconds-per-mutant stays: a kill matrix with less than the README's 5 s is flaky under load.)
SHORTER = [(re.compile(r"--seconds[ =]\S+"), "--seconds 2"),
           (re.compile(r"--run-seconds[ =]\S+"), "--run-seconds 2"),
           (re.compile(r"--hours[ =]\S+"), "--hours 0.002"),
           (re.compile(r"--cases[ =]\d+"), "--cases 5")]


def commands(repo: Path):
    for readme in READMES:
        path = repo / readme
        if not path.exists():
            continue
        fence_open, in_block = False, False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                fence_open = not fence_open   # a block of commands: no language, or a shell
                in_block = fence_open and line.strip() in ("```", "```sh", "```shell", "```console")
                continue
            text = line.split("  #")[0].split(" # ")[0].strip()
            if in_block and COMMAND.match(text):
                yield f"{readme}:{n}", text


def why_not_run(cmd: str) -> str | None:
    if cmd.startswith("make "):
        return "make target (this test runs inside make test)"
    if cmd.startswith("tdxhp vm"):
        return "boots QEMU (make vm-smoke runs it)"
    if "[" in cmd or "..." in cmd:
        return "synopsis, not a command"
    if "<" in cmd or "~" in cmd:
        return "has a placeholder"
    return None


def main() -> int:
    binary, repo = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    failed, ran, skipped = [], 0, 0
    with tempfile.TemporaryDirectory(prefix="tdxhp-readme-") as tmp:
        work = Path(tmp)
        for name in ("fixtures", "runners", "domain"):   # what the commands name, read-only
            (work / name).symlink_to(repo / name)
        bindir = work / "bin"
        bindir.mkdir()
        (bindir / "tdxhp").symlink_to(binary)
        env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}", TDXHP=str(binary),
                   PYTHONDONTWRITEBYTECODE="1")
        for where, cmd in commands(repo):
            if reason := why_not_run(cmd):
                print(f"not run  {where}: {cmd}  ({reason})")
                skipped += 1
                continue
            short = cmd
            for pattern, repl in SHORTER:
                short = pattern.sub(repl, short)
            try:
                r = subprocess.run(shlex.split(short), cwd=work, env=env, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, errors="replace", timeout=180)
                code, tail = r.returncode, (r.stdout + r.stderr).strip().splitlines()[-4:]
            except subprocess.TimeoutExpired:
                code, tail = "timeout", []
            ran += 1
            allowed = {0, 4, 1} if re.search(r"--mutant[ =]MUT-", short) else {0, 4}
            verdict = "ok" if code in allowed else "FAIL"
            print(f"{verdict:8} {where}: {short}  -> exit {code}")
            if verdict == "FAIL":
                failed.append(where)
            if code != 0:
                for t in tail:
                    print(f"           {t}")
    print(f"readme commands: {ran} run, {len(failed)} failed, {skipped} not run")
    return 1 if failed or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
