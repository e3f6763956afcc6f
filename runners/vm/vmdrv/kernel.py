"""Phase prepare-kernel: Debian's 6.12 image + kvm.ko/kvm-amd.ko rebuilt with SW-protected VMs.

Debian's config lacks CONFIG_KVM_SW_PROTECTED_VM, so KVM_X86_SW_PROTECTED_VM (private memory,
guest_memfd, memory attributes without TDX hardware) is missing. Rebuilding only kvm.ko and
kvm-amd.ko out of tree against the matching headers, with the option defined, turns it on;
vermagic and symbol CRCs still match the image because nothing exported changes.
Everything lands in a cache keyed by the Debian version, never in the host's /boot.
"""
import glob
import os
import re
import shutil
import subprocess

from . import modinfo, version
from .util import log, run

SOURCE_TARBALL = "/usr/src/linux-source-6.12.tar.xz"
SWPROT_MODULES = ("kvm.ko", "kvm-amd.ko")


class KernelPrepError(RuntimeError):
    pass


def _apt_policy(packages):
    out = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True, check=False)
    return version.parse_policy(out.stdout)


def resolve_packages() -> version.KernelPackages:
    """Picks the linux-source-6.12 version and checks image/headers/kbuild exist at it."""
    src = _apt_policy([version.SOURCE_PACKAGE]).get(version.SOURCE_PACKAGE)
    if src is None:
        raise version.VersionMismatch(
            f"apt knows no {version.SOURCE_PACKAGE}: run `make vm-deps` (needs Debian 12 security/backports sources)")
    pkgs = version.packages_for(version.pick_source_version(src))
    version.check_same_version(pkgs, _apt_policy(pkgs.all()))
    return pkgs


def cache_dir(build_dir: str, pkgs: version.KernelPackages) -> str:
    return os.path.join(build_dir, "kernel", pkgs.version.replace("~", "_"))


class PreparedKernel:
    """Paths of a kernel ready to boot: bzImage, its module tree, and module overrides."""

    def __init__(self, bzimage, modules_dir, overrides, uname, label):
        self.bzimage = bzimage
        self.modules_dir = modules_dir      # .../lib/modules/<uname>
        self.overrides = overrides          # {"kvm.ko": path} replacing the tree's copy
        self.uname = uname
        self.label = label

    def __repr__(self):
        return f"PreparedKernel({self.label}, {self.bzimage})"


def _download(pkgs, debs_dir, need_source):
    os.makedirs(debs_dir, exist_ok=True)
    wanted = [f"{p}={pkgs.version}" for p in pkgs.all()]
    if need_source:
        wanted.append(f"{version.SOURCE_PACKAGE}={pkgs.version}")
    missing = [w for w in wanted if not glob.glob(os.path.join(debs_dir, w.split("=")[0] + "_*.deb"))]
    if missing:
        log(f"apt-get download {' '.join(missing)}")
        # Download, not install: installing headers pulls a signed image and initramfs-tools into /boot.
        run(["apt-get", "download", "-q", *missing], cwd=debs_dir)


def _extract(debs_dir, root):
    os.makedirs(root, exist_ok=True)
    for deb in sorted(glob.glob(os.path.join(debs_dir, "*.deb"))):
        if os.path.basename(deb).startswith(version.SOURCE_PACKAGE):
            continue
        run(["dpkg-deb", "-x", deb, root])
    _reroot_absolute_symlinks(root)


def _reroot_absolute_symlinks(root):
    """Headers point at /usr/lib/linux-kbuild-*/scripts etc.; make them point inside root."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = os.readlink(path)
                if target.startswith("/"):
                    os.unlink(path)
                    os.symlink(os.path.relpath(root + target, dirpath), path)


def _reroot_makefile(path, root):
    """The flavour Makefile includes /usr/src/linux-headers-*-common/Makefile: point it into root."""
    with open(path) as f:
        text = f.read()
    fixed = re.sub(r"(?<![\w/])/usr/(src|lib)/", lambda m: f"{root}/usr/{m.group(1)}/", text)
    if fixed != text:
        with open(path, "w") as f:
            f.write(fixed)


def _source_tarball(pkgs, debs_dir, work):
    """The linux-source-6.12 tarball of exactly pkgs.version: /usr/src if installed at it, else the deb."""
    src_pol = _apt_policy([version.SOURCE_PACKAGE]).get(version.SOURCE_PACKAGE)
    if src_pol and src_pol.installed == pkgs.version and os.path.exists(SOURCE_TARBALL):
        return SOURCE_TARBALL
    deb = glob.glob(os.path.join(debs_dir, f"{version.SOURCE_PACKAGE}_*.deb"))
    if not deb:
        raise KernelPrepError(f"no {version.SOURCE_PACKAGE} deb in {debs_dir}")
    unpack = os.path.join(work, "source-deb")
    run(["dpkg-deb", "-x", deb[0], unpack])
    return os.path.join(unpack, SOURCE_TARBALL.lstrip("/"))


def _extract_kvm_sources(tarball, dest):
    """Only arch/x86/kvm and virt/kvm: the two trees kvm.ko and kvm-amd.ko are built from.
    GNU tar streams the 150 MB xz once and skips everything else."""
    os.makedirs(dest, exist_ok=True)
    top = "linux-source-6.12"
    run(["tar", "-xJf", tarball, "-C", dest, "--strip-components=1", "--wildcards",
         f"{top}/arch/x86/kvm/*", f"{top}/virt/kvm/*"])


def _build_swprot(pkgs, root, work, jobs):
    headers = os.path.join(root, "usr/src", f"linux-headers-{pkgs.uname}")
    common = os.path.join(root, "usr/src", f"linux-headers-{pkgs.abi}-common")
    if not os.path.isdir(headers) or not os.path.isdir(common):
        raise KernelPrepError(f"headers trees missing after extraction: {headers}, {common}")
    _reroot_makefile(os.path.join(headers, "Makefile"), root)
    # The flavour tree includes the -common tree's Makefile, so $(srctree) is -common. The kvm
    # Makefile includes $(srctree)/virt/kvm/Makefile.kvm, trace.h resolves TRACE_INCLUDE_PATH
    # from $(srctree)/include/trace, and Makefile.kvm names ../../../virt/kvm objects: so the
    # sources sit in -common at their upstream paths and M=-common/arch/x86/kvm.
    src = os.path.join(work, "kvm-src")
    if os.path.exists(src):
        shutil.rmtree(src)
    log("extracting arch/x86/kvm and virt/kvm from linux-source-6.12")
    _extract_kvm_sources(_source_tarball(pkgs, os.path.join(work, "debs"), work), src)
    for sub in ("arch/x86/kvm", "virt/kvm"):
        dst = os.path.join(common, sub)
        if os.path.islink(dst):
            os.unlink(dst)
        elif os.path.exists(dst):
            shutil.rmtree(dst)
        shutil.copytree(os.path.join(src, sub), dst)
    module_dir = os.path.join(common, "arch/x86/kvm")
    kbuild = os.path.join(root, "usr/lib", f"linux-kbuild-{pkgs.abi}")
    env = dict(os.environ, PATH=f"{kbuild}/scripts:{kbuild}/tools/objtool:{os.environ['PATH']}")
    log("building kvm.ko and kvm-amd.ko with CONFIG_KVM_SW_PROTECTED_VM")
    run(["make", "-C", headers, f"M={module_dir}", f"-j{jobs}",
         "KCFLAGS=-DCONFIG_KVM_SW_PROTECTED_VM=1",   # turns on KVM_X86_SW_PROTECTED_VM (issue 6)
         "CONFIG_KVM_INTEL=",                        # guest CPU is AMD (SVM under TCG): skip kvm-intel
         "CONFIG_DEBUG_INFO_BTF_MODULES=",           # module BTF needs pahole and serves only BPF
         "CONFIG_DEBUG_INFO=",                       # no -g: the initramfs copy is stripped anyway
         "modules"], env=env, quiet=True)
    out = os.path.join(work, "kvm-swprot")
    os.makedirs(out, exist_ok=True)
    for name in SWPROT_MODULES:
        shutil.copy2(os.path.join(module_dir, name), os.path.join(out, name))
        # Debug info makes kvm.ko 23 MB; the initramfs only needs the loadable parts.
        run(["strip", "--strip-debug", os.path.join(out, name)])
    return out


def _check_vermagic(built_dir, modules_dir):
    for name in SWPROT_MODULES:
        shipped = modinfo.find_module(modules_dir, name[:-3])
        if shipped is None:
            raise KernelPrepError(f"image has no {name} to compare vermagic with")
        ours = modinfo.read_modinfo(modinfo.module_bytes(os.path.join(built_dir, name))).get("vermagic")
        theirs = modinfo.read_modinfo(modinfo.module_bytes(shipped)).get("vermagic")
        if ours != theirs:
            raise KernelPrepError(f"rebuilt {name} vermagic '{ours}' != image's '{theirs}'")


def prepare_debian(build_dir: str, jobs: int) -> PreparedKernel:
    pkgs = resolve_packages()
    work = cache_dir(build_dir, pkgs)
    stamp = os.path.join(work, "prepared.stamp")
    root = os.path.join(work, "root")
    modules_dir = _modules_dir(root, pkgs.uname)
    built = os.path.join(work, "kvm-swprot")
    if not os.path.exists(stamp):
        log(f"preparing Debian kernel {pkgs.version} (cache {work})")
        src_pol = _apt_policy([version.SOURCE_PACKAGE]).get(version.SOURCE_PACKAGE)
        need_source = not (src_pol and src_pol.installed == pkgs.version and os.path.exists(SOURCE_TARBALL))
        _download(pkgs, os.path.join(work, "debs"), need_source)
        if os.path.exists(root):
            shutil.rmtree(root)
        log("dpkg-deb -x image, headers, kbuild")
        _extract(os.path.join(work, "debs"), root)
        modules_dir = _modules_dir(root, pkgs.uname)
        built = _build_swprot(pkgs, root, work, jobs)
        _check_vermagic(built, modules_dir)
        with open(stamp, "w") as f:
            f.write(pkgs.version + "\n")
    else:
        log(f"kernel {pkgs.version} cached in {work}")
    bzimage = os.path.join(root, "boot", f"vmlinuz-{pkgs.uname}")
    overrides = {name: os.path.join(built, name) for name in SWPROT_MODULES}
    return PreparedKernel(bzimage, modules_dir, overrides, pkgs.uname, f"debian {pkgs.version} + SW_PROTECTED_VM kvm")


def _modules_dir(root, uname):
    for prefix in ("lib/modules", "usr/lib/modules"):
        path = os.path.join(root, prefix, uname)
        if os.path.isdir(path):
            return path
    return os.path.join(root, "lib/modules", uname)


def prepare_user(kernel: str, modules: str | None) -> PreparedKernel:
    """A kernel under test: used as given (its own config decides SW_PROTECTED_VM)."""
    if not os.path.isfile(kernel):
        raise KernelPrepError(f"--kernel {kernel}: no such file")
    if modules and not os.path.isdir(os.path.join(modules, "kernel")):
        raise KernelPrepError(f"--modules {modules}: no kernel/ there (give lib/modules/<release>)")
    uname = os.path.basename(os.path.normpath(modules)) if modules else ""
    return PreparedKernel(os.path.abspath(kernel), os.path.abspath(modules) if modules else None, {}, uname,
                          f"user kernel {kernel}")
