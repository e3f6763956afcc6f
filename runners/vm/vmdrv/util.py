"""Logging, subprocess and phase timing shared by the driver's phases."""
import subprocess
import sys
import time


_START = time.monotonic()


def log(msg: str) -> None:
    print(f"[tdxhp vm +{time.monotonic() - _START:6.1f}s] {msg}", file=sys.stderr, flush=True)


class CommandError(RuntimeError):
    pass


def run(cmd, cwd=None, env=None, quiet=False):
    """Runs cmd; on failure raises with the command and (when quiet) the tail of its output."""
    if quiet:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    else:
        res = subprocess.run(cmd, cwd=cwd, env=env)
    if res.returncode != 0:
        tail = "\n".join((res.stdout or "").splitlines()[-40:]) if quiet else ""
        raise CommandError(f"command failed (exit {res.returncode}): {' '.join(cmd)}\n{tail}")
    return res


class PhaseTimer:
    """Records seconds per phase so the driver can print them (issue 6 asks for phase timings)."""

    def __init__(self):
        self.phases = []   # [(name, seconds, ok)]

    def phase(self, name):
        timer = self

        class _Phase:
            def __enter__(self):
                self.start = time.monotonic()
                log(f"phase {name} ...")
                return self

            def __exit__(self, exc_type, exc, tb):
                seconds = time.monotonic() - self.start
                timer.phases.append((name, seconds, exc_type is None))
                log(f"phase {name}: {seconds:.1f}s{'' if exc_type is None else ' (failed)'}")
                return False
        return _Phase()

    def summary(self) -> str:
        rows = [f"  {name:<18} {secs:7.1f}s{'' if ok else '  FAILED'}" for name, secs, ok in self.phases]
        total = sum(s for _, s, _ in self.phases)
        return "phase timings:\n" + "\n".join(rows) + f"\n  {'total':<18} {total:7.1f}s"
