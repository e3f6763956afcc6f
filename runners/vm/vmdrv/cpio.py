"""A newc cpio writer: the initramfs format the kernel unpacks. Stdlib only, no root needed
for device nodes (the kernel, not the host, creates them from the archive)."""
import stat as st
import time


class CpioWriter:
    def __init__(self, fileobj):
        self.f = fileobj
        self.ino = 1
        self.mtime = int(time.time())

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_bytes = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, 1, self.mtime, len(data), 0, 0, rdev[0], rdev[1], len(name_bytes), 0))
        self.ino += 1
        self.f.write(header.encode() + name_bytes)
        self._pad(110 + len(name_bytes))
        self.f.write(data)
        self._pad(len(data))

    def _pad(self, length):
        self.f.write(b"\0" * ((4 - length % 4) % 4))

    def directory(self, name, mode=0o755):
        self._entry(name, st.S_IFDIR | mode)

    def file(self, name, data: bytes, mode=0o644):
        self._entry(name, st.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, st.S_IFLNK | 0o777, target.encode())

    def char_device(self, name, major, minor, mode=0o600):
        self._entry(name, st.S_IFCHR | mode, rdev=(major, minor))

    def trailer(self):
        self._entry("TRAILER!!!", 0)
