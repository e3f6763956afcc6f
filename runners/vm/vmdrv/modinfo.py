"""Kernel module files without kmod: decompress, read .modinfo, resolve modules.dep order.

The initramfs loads modules with busybox insmod, which needs them uncompressed and in
dependency order; kmod is not installed on the host, so this reads the files directly.
"""
import gzip
import lzma
import os
import shutil
import subprocess


def module_bytes(path: str) -> bytes:
    """Uncompressed contents of a .ko / .ko.xz / .ko.gz / .ko.zst file."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        if not shutil.which("zstd"):
            raise RuntimeError(f"{path} is zstd-compressed and no zstd binary is installed")
        return subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return data


def read_modinfo(data: bytes) -> dict:
    """key=value pairs of the .modinfo strings (vermagic, depends, ...); first value wins."""
    info = {}
    for key in (b"vermagic=", b"depends=", b"name="):
        idx = data.find(b"\0" + key)
        if idx >= 0:
            end = data.find(b"\0", idx + 1)
            info[key[:-1].decode()] = data[idx + 1 + len(key):end].decode(errors="replace")
    return info


def normalize(name: str) -> str:
    """kvm-amd, kvm_amd and kernel/arch/x86/kvm/kvm-amd.ko.xz all name the module kvm_amd."""
    base = os.path.basename(name)
    for ext in (".xz", ".gz", ".zst"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    if base.endswith(".ko"):
        base = base[:-3]
    return base.replace("-", "_")


def parse_modules_dep(text: str) -> dict:
    """{module name: (relative path, [dependency names])} from modules.dep."""
    deps = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[normalize(path)] = (path.strip(), [normalize(d) for d in rest.split()])
    return deps


def parse_builtin(text: str) -> set:
    return {normalize(line.strip()) for line in text.splitlines() if line.strip()}


class MissingModule(RuntimeError):
    pass


def load_order(wanted, deps: dict, builtin: set) -> list:
    """Names in insmod order (dependencies first, each once); builtin modules are skipped."""
    order, seen = [], set()

    def visit(name, chain):
        name = normalize(name)
        if name in seen:
            return
        if name not in deps:
            if name in builtin:
                seen.add(name)
                return
            raise MissingModule(f"module {name} (needed by {' <- '.join(chain) or 'the guest'}) is neither in "
                                "modules.dep nor built in")
        seen.add(name)
        for dep in deps[name][1]:
            visit(dep, [name] + chain)
        order.append(name)

    for w in wanted:
        visit(w, [])
    return order


def find_module(modules_dir: str, name: str):
    dep_file = os.path.join(modules_dir, "modules.dep")
    with open(dep_file) as f:
        deps = parse_modules_dep(f.read())
    entry = deps.get(normalize(name))
    return os.path.join(modules_dir, entry[0]) if entry else None
