"""The static programs the initramfs carries: the probe and a fully static tdxhp.

The guest has no libc or loader beyond busybox, so both are linked -static; tdxhp is built
without sanitizers in its own build dir (build-vm/static) so it never disturbs other builds.
"""
import os
import shutil

from .util import run, CommandError

PROBE_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "probe", "kvm_probe.c")


def build_probe(build_dir: str) -> str:
    out = os.path.join(build_dir, "probe", "kvm_probe")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cc = shutil.which("gcc") or shutil.which("cc")
    run([cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, PROBE_SOURCE], quiet=True)
    return out


class TdxhpUnavailable(RuntimeError):
    pass


def static_link_overrides() -> list:
    """CMake cache settings that make the static link of the kvm target work (issue 6 facts:
    Debian ships libtracefs.a/libtraceevent.a).

    - pkg_check_modules resolves libtracefs/libtraceevent to the .so files, which -static
      refuses; pre-seeding its cached library paths with the .a archives avoids that.
    - runners/kvm links libkvm's string_override.o as an object and libkvm.a (which holds the
      same object) before it; under -static the archive member is pulled too. Both copies are
      the same compiled file, so keeping the first definition is safe."""
    libdir = "/usr/lib/x86_64-linux-gnu"
    try:
        out = run(["pkg-config", "--variable=libdir", "libtracefs"], quiet=True).stdout.strip()
        libdir = out or libdir
    except (CommandError, FileNotFoundError):
        pass
    return ["-U__pkg_config_checked_TRACEFS",
            f"-Dpkgcfg_lib_TRACEFS_tracefs={libdir}/libtracefs.a",
            f"-Dpkgcfg_lib_TRACEFS_traceevent={libdir}/libtraceevent.a",
            "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-multiple-definition"]


def build_tdxhp(source_dir: str, build_dir: str, jobs: int) -> str:
    return _build_static(source_dir, build_dir, jobs, "tdxhp", os.path.join("runners", "cli", "tdxhp"))


def build_kvm_tests(source_dir: str, build_dir: str, jobs: int) -> str:
    """The real-KVM gtest binary, for the smoke's in-guest KvmSwprot/MmuTraceLive groups."""
    return _build_static(source_dir, build_dir, jobs, "kvm_tests", os.path.join("runners", "kvm", "kvm_tests"))


def build_repros(source_dir: str, build_dir: str, tdxhp: str, cases: dict) -> dict:
    """{program name: static binary}: each case exported (`tdxhp export --c --flavour swprot`)
    and built against the static build's libkvm (runners/export/build_repro.sh, STATIC=1)."""
    out_dir = os.path.join(build_dir, "repro")
    os.makedirs(out_dir, exist_ok=True)
    libkvm = os.path.join(build_dir, "static", "libkvm")
    programs = {}
    for case, name in sorted(cases.items()):
        src, binary = os.path.join(out_dir, f"{name}.c"), os.path.join(out_dir, name)
        try:
            run([tdxhp, "export", "--c", case, "-o", src, "--flavour", "swprot"], quiet=True)
            run(["sh", os.path.join(source_dir, "runners", "export", "build_repro.sh"), libkvm, src, binary],
                quiet=True, env=dict(os.environ, STATIC="1"))
        except CommandError as e:
            raise TdxhpUnavailable(f"reproducer {name} of {case} did not export or build:\n{e}") from e
        programs[name] = binary
    return programs


def _build_static(source_dir: str, build_dir: str, jobs: int, target: str, relpath: str) -> str:
    static_dir = os.path.join(build_dir, "static")
    try:
        run(["cmake", "-S", source_dir, "-B", static_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
             "-DTDXHP_STATIC=ON", "-DTDXHP_SANITIZE=OFF", *static_link_overrides()], quiet=True)
        run(["cmake", "--build", static_dir, "--target", target, "-j", str(jobs)], quiet=True)
    except CommandError as e:
        raise TdxhpUnavailable(f"static {target} did not build in {static_dir}:\n{e}") from e
    binary = os.path.join(static_dir, relpath)
    if not os.path.isfile(binary):
        raise TdxhpUnavailable(f"static build finished but {binary} is missing")
    # The initramfs carries a debug-stripped copy; the build keeps the full one for gdb.
    stripped = os.path.join(static_dir, f"{target}.initramfs")
    run(["strip", "--strip-debug", "-o", stripped, binary])
    return stripped
