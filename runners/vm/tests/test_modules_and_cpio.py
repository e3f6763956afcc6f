"""Module load order from modules.dep, .modinfo reading, and the newc archive layout."""
import io
import lzma
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmdrv import modinfo  # noqa: E402
from vmdrv.cpio import CpioWriter  # noqa: E402

MODULES_DEP = """kernel/arch/x86/kvm/kvm.ko.xz: kernel/virt/lib/irqbypass.ko.xz
kernel/arch/x86/kvm/kvm-amd.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz kernel/drivers/crypto/ccp/ccp.ko.xz kernel/virt/lib/irqbypass.ko.xz
kernel/drivers/crypto/ccp/ccp.ko.xz:
kernel/virt/lib/irqbypass.ko.xz:
kernel/fs/9p/9p.ko.xz: kernel/fs/netfs/netfs.ko.xz kernel/net/9p/9pnet.ko.xz
kernel/net/9p/9pnet.ko.xz:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz
kernel/fs/netfs/netfs.ko.xz:
"""


class LoadOrder(unittest.TestCase):
    def test_dependencies_first_each_once(self):
        deps = modinfo.parse_modules_dep(MODULES_DEP)
        order = modinfo.load_order(["kvm-amd", "9pnet_virtio", "9p"], deps, set())
        for before, after in (("irqbypass", "kvm"), ("kvm", "kvm_amd"), ("ccp", "kvm_amd"),
                              ("9pnet", "9pnet_virtio"), ("netfs", "9p")):
            self.assertLess(order.index(before), order.index(after), f"{before} must load before {after}")
        self.assertEqual(len(order), len(set(order)))
        self.assertEqual(len(order), 8)

    def test_builtin_module_is_skipped(self):
        deps = modinfo.parse_modules_dep(MODULES_DEP.replace("kernel/fs/netfs/netfs.ko.xz:\n", ""))
        order = modinfo.load_order(["9p"], deps, {"netfs"})
        self.assertNotIn("netfs", order)

    def test_missing_module_names_who_needs_it(self):
        deps = modinfo.parse_modules_dep(MODULES_DEP.replace("kernel/drivers/crypto/ccp/ccp.ko.xz:\n", ""))
        with self.assertRaisesRegex(modinfo.MissingModule, "ccp.*kvm_amd"):
            modinfo.load_order(["kvm_amd"], deps, set())


class ModInfo(unittest.TestCase):
    def test_vermagic_from_compressed_module(self):
        import tempfile
        body = b"\x7fELF....\0license=GPL\0vermagic=6.12.117+deb12-amd64 SMP preempt mod_unload modversions \0name=kvm\0"
        with tempfile.NamedTemporaryFile(suffix=".ko.xz", delete=False) as f:
            f.write(lzma.compress(body))
        try:
            info = modinfo.read_modinfo(modinfo.module_bytes(f.name))
        finally:
            os.unlink(f.name)
        self.assertEqual(info["vermagic"], "6.12.117+deb12-amd64 SMP preempt mod_unload modversions ")
        self.assertEqual(info["name"], "kvm")


class Cpio(unittest.TestCase):
    def test_newc_entries_are_aligned_and_terminated(self):
        buf = io.BytesIO()
        w = CpioWriter(buf)
        w.directory("bin")
        w.file("bin/x", b"hello", 0o755)
        w.char_device("dev/console", 5, 1)
        w.trailer()
        data = buf.getvalue()
        self.assertEqual(len(data) % 4, 0)
        self.assertTrue(data.startswith(b"070701"))
        self.assertIn(b"bin/x\0", data)
        self.assertIn(b"hello", data)
        self.assertTrue(data.rstrip(b"\0").endswith(b"TRAILER!!!"))
        # The file entry's mode field says regular file 0755 (0x81ED).
        idx = data.index(b"070701", 1)
        self.assertEqual(data[idx + 14:idx + 22], b"000081ED")
        # The device entry carries rdev major 5 minor 1.
        dev = data.index(b"dev/console\0") - 110    # the name follows the 110-byte header
        self.assertEqual(data[dev:dev + 6], b"070701")
        self.assertEqual(data[dev + 78:dev + 94], b"0000000500000001")


if __name__ == "__main__":
    unittest.main()
