"""Phase build-initramfs: busybox, the kvm + 9p modules, the static programs, and /init.

Per-run inputs (the commands to run, case files) go through the 9p share, not the image,
so the initramfs only changes when the kernel or a binary changes.
"""
import io
import os

from . import modinfo
from .cpio import CpioWriter

# Load order is resolved from modules.dep; these are the roots: KVM on the AMD guest CPU that
# QEMU's -cpu max presents (kvm_amd pulls kvm, irqbypass, ccp) and the 9p share stack.
GUEST_MODULES = ("kvm_amd", "9pnet_virtio", "9p")
# npt: 2M/1G leaves in the TDP MMU need nested paging (kvm_amd default, stated for clarity).
MODULE_PARAMS = {"kvm_amd": "npt=1"}
SHARE_TAG = "tdxhp_share"
BUSYBOX = "/bin/busybox"

INIT_SCRIPT = r"""#!/bin/busybox sh
# tdxhp vm guest init: mount, load modules, mount the share, run /share/commands.sh, power off.
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/tdxhp/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages
echo "TDXHP-VM: init up at $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"
while read -r module params; do
  insmod "/lib/modules/$module.ko" $params || echo "TDXHP-VM-FATAL: insmod $module failed"
done < /etc/tdxhp-modules
mkdir -p /share
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 @SHARE_TAG@ /share; then
  echo "TDXHP-VM-FATAL: cannot mount the 9p share"
  poweroff -f
fi
echo "TDXHP-VM: modules loaded, share mounted at $(cut -d' ' -f1 /proc/uptime)s"
cd /share
if [ -f /share/commands.sh ]; then sh /share/commands.sh; else echo "TDXHP-VM-FATAL: no commands.sh"; fi
dmesg > /share/dmesg.txt
echo "TDXHP-VM: done at $(cut -d' ' -f1 /proc/uptime)s"
cd /
sync
umount /share
poweroff -f
"""


def init_script() -> str:
    return INIT_SCRIPT.replace("@SHARE_TAG@", SHARE_TAG)


def stage_modules(modules_dir, overrides, wanted=GUEST_MODULES):
    """[(name, uncompressed bytes)] in insmod order; overrides replace the tree's kvm.ko etc."""
    deps = modinfo.module_deps(modules_dir, wanted)
    builtin_path = os.path.join(modules_dir, "modules.builtin")
    builtin = set()
    if os.path.exists(builtin_path):
        with open(builtin_path) as f:
            builtin = modinfo.parse_builtin(f.read())
    override_by_name = {modinfo.normalize(k): v for k, v in overrides.items()}
    staged = []
    for name in modinfo.load_order(wanted, deps, builtin):
        path = override_by_name.get(name, os.path.join(modules_dir, deps[name][0]))
        staged.append((name, modinfo.module_bytes(path)))
    return staged


def build(out_path, kernel, programs: dict, extra_files: dict | None = None) -> list:
    """Writes the initramfs (uncompressed newc cpio, a second to write); returns the module order.

    programs: {name in /tdxhp/bin: host path}; extra_files: {guest path: bytes}."""
    modules = stage_modules(kernel.modules_dir, kernel.overrides) if kernel.modules_dir else []
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    payload = io.BytesIO()
    cpio = CpioWriter(payload)
    for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "share", "tdxhp", "tdxhp/bin"):
        cpio.directory(d)
    # The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", init_script().encode(), 0o755)
    order = []
    for name, data in modules:
        cpio.file(f"lib/modules/{name}.ko", data)
        order.append(f"{name} {MODULE_PARAMS.get(name, '')}".rstrip())
    cpio.file("etc/tdxhp-modules", ("\n".join(order) + "\n").encode())
    for name, path in sorted(programs.items()):
        with open(path, "rb") as f:
            cpio.file(f"tdxhp/bin/{name}", f.read(), 0o755)
    for guest_path, data in sorted((extra_files or {}).items()):
        cpio.file(guest_path.lstrip("/"), data)
    cpio.trailer()
    with open(out_path + ".tmp", "wb") as f:
        f.write(payload.getvalue())
    os.replace(out_path + ".tmp", out_path)
    return [name for name, _ in modules]
