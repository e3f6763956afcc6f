"""Finding and running the tdxhp binary; a run never loses its output, even when tdxhp dies."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "build" / "runners" / "cli" / "tdxhp"

# tdxhp exit codes (DESIGN.md "Running", kselftest's skip is 4).
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_SKIP, EXIT_INTERRUPTED = 0, 1, 2, 4, 130


def stop_on_sigterm() -> None:
    """`kill` stops an orchestrator as gracefully as Ctrl-C: SIGTERM raises KeyboardInterrupt."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, raise_interrupt)


class OrchestrationError(Exception):
    """Stops the whole nightly/gate with exit code 2: the tool or its input is unusable."""


def find_tdxhp(explicit: str | None = None) -> Path:
    """The binary from --tdxhp, else $TDXHP, else the default build location."""
    if explicit:
        source, candidate = "--tdxhp", Path(explicit)
    elif os.environ.get("TDXHP"):
        source, candidate = "$TDXHP", Path(os.environ["TDXHP"])
    else:
        source, candidate = "default location", DEFAULT_BINARY
    if not candidate.exists():
        raise OrchestrationError(
            f"tdxhp binary not found at {candidate} ({source}); build it with `make build` "
            f"or point --tdxhp / $TDXHP at it")
    if candidate.is_dir() or not os.access(candidate, os.X_OK):
        raise OrchestrationError(f"tdxhp at {candidate} ({source}) is not an executable file")
    return candidate.resolve()


@dataclass
class Invocation:
    """One finished (or killed) tdxhp process and where its output went."""
    label: str                 # names the run in every message, e.g. "run 17 (sim, seed 42)"
    argv: list[str]
    returncode: int | None     # negative: killed by that signal (Python's convention)
    timed_out: bool
    seconds: float
    stdout_path: Path
    stderr_path: Path

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def stderr_tail(self, lines: int = 12) -> str:
        """Head and tail of stderr: tdxhp and sanitizers put the cause first, usage/stack after."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        all_lines = [line for line in text.rstrip().splitlines() if line.strip()]
        if len(all_lines) <= lines:
            return "\n".join(all_lines)
        head = max(1, lines // 2)
        return "\n".join(all_lines[:head] + ["..."] + all_lines[len(all_lines) - (lines - head):])


def invoke(binary: Path, args: list[str], label: str, log_dir: Path, timeout: float) -> Invocation:
    """Runs tdxhp with stdout/stderr going to files under log_dir (so a kill keeps them).

    A run that outlives `timeout` is a hang: its process group is killed and the
    invocation is marked timed_out (DESIGN.md: a hang is a reported failure).
    If this process is interrupted, the child is killed too, then the interrupt propagates.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    argv = [str(binary), *args]
    started = time.monotonic()
    timed_out = False
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
    return Invocation(label, argv, proc.returncode, timed_out, time.monotonic() - started,
                      stdout_path, stderr_path)


STOP_GRACE_SECONDS = 5   # tdxhp saves its results and the running case on SIGTERM
PR_SET_PDEATHSIG = 1     # linux/prctl.h


def _die_with_parent(parent_pid: int):
    """In the child before exec: SIGTERM when the orchestrator dies, even by SIGKILL, so tdxhp
    saves its results and stops instead of running on as an orphan in its own session."""
    def setup():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:   # the parent died before prctl took effect
            os._exit(1)
    return setup


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM first so tdxhp keeps its partial results, SIGKILL if it does not exit."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
