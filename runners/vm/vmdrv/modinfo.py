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


def index_tree(modules_dir: str) -> dict:
    """{module name: path relative to modules_dir} for every .ko* file in the tree."""
    index = {}
    for dirpath, _, filenames in os.walk(os.path.join(modules_dir, "kernel")):
        for fn in filenames:
            if ".ko" in fn:
                index[normalize(fn)] = os.path.relpath(os.path.join(dirpath, fn), modules_dir)
    return index


def deps_from_modinfo(modules_dir: str, wanted) -> dict:
    """modules.dep's content for `wanted` and their dependencies, read from each module's
    .modinfo `depends=`: Debian's image package ships no modules.dep (depmod makes it at
    install time) and kmod is not on the host."""
    index = index_tree(modules_dir)
    deps, todo = {}, [normalize(w) for w in wanted]
    while todo:
        name = todo.pop()
        if name in deps or name not in index:
            continue
        info = read_modinfo(module_bytes(os.path.join(modules_dir, index[name])))
        needs = [normalize(d) for d in info.get("depends", "").split(",") if d]
        deps[name] = (index[name], needs)
        todo.extend(needs)
    return deps


def module_deps(modules_dir: str, wanted) -> dict:
    dep_file = os.path.join(modules_dir, "modules.dep")
    if os.path.exists(dep_file):
        with open(dep_file) as f:
            return parse_modules_dep(f.read())
    return deps_from_modinfo(modules_dir, wanted)


def find_module(modules_dir: str, name: str):
    rel = index_tree(modules_dir).get(normalize(name))
    return os.path.join(modules_dir, rel) if rel else None
