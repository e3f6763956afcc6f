"""Phase boot: QEMU/TCG with nested SVM + NPT, serial console to a log, the out dir as 9p share.

TCG with -cpu max exposes SVM with nested paging, so the guest's KVM has a TDP MMU with 2M
leaves on any host, with or without /dev/kvm (issue 6, verified facts).
"""
import subprocess
import sys
import threading
import time

from .initramfs import SHARE_TAG
from .util import log

QEMU = "qemu-system-x86_64"
# hugepages: a 2M hugetlb pool for shared backing (INV-CONTIG with hugetlb); mitigations=off
# only speeds up TCG.
KERNEL_CMDLINE = "console=ttyS0 panic=-1 loglevel=4 mitigations=off hugepagesz=2M hugepages=256"
# Serial lines worth echoing live: our markers, probe/KTAP lines, kernel trouble.
ECHO_PREFIXES = ("TDXHP-VM", "ok ", "not ok ", "Bail out", "Kernel panic", "KTAP", "# ")


def qemu_argv(bzimage, initrd, share_dir, memory="4G", smp=2, accel="tcg,thread=single", extra_cmdline=""):
    cmdline = KERNEL_CMDLINE + (" " + extra_cmdline if extra_cmdline else "")
    return [QEMU, "-M", "q35", "-accel", accel, "-cpu", "max", "-m", memory, "-smp", str(smp),
            "-nographic", "-no-reboot",
            "-kernel", bzimage, "-initrd", initrd, "-append", cmdline,
            "-virtfs", f"local,path={share_dir},mount_tag={SHARE_TAG},security_model=none,id={SHARE_TAG}"]


def boot(argv, serial_log_path, timeout_s, echo_all=False):
    """Runs QEMU until it powers off or timeout_s passes; returns (qemu exit code, timed_out)."""
    log(f"boot: {' '.join(argv)}")
    with open(serial_log_path, "w", errors="replace") as serial:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")

        def pump():
            for line in proc.stdout:
                serial.write(line)
                serial.flush()
                # Markers can follow the firmware's terminal escapes on the same line.
                if echo_all or "TDXHP-VM" in line or line.lstrip().startswith(ECHO_PREFIXES):
                    sys.stderr.write("  guest| " + line)
                    sys.stderr.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout_s
        timed_out = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                timed_out = True
                log(f"timeout after {timeout_s}s: killing QEMU (pid {proc.pid})")
                proc.kill()
                break
            time.sleep(0.5)
        rc = proc.wait()
        reader.join(timeout=5)
    return rc, timed_out
