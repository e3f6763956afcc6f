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


def build_tdxhp(source_dir: str, build_dir: str, jobs: int) -> str:
    static_dir = os.path.join(build_dir, "static")
    try:
        run(["cmake", "-S", source_dir, "-B", static_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
             "-DTDXHP_STATIC=ON", "-DTDXHP_SANITIZE=OFF"], quiet=True)
        run(["cmake", "--build", static_dir, "--target", "tdxhp", "-j", str(jobs)], quiet=True)
    except CommandError as e:
        raise TdxhpUnavailable(f"static tdxhp did not build in {static_dir}:\n{e}") from e
    binary = os.path.join(static_dir, "runners", "cli", "tdxhp")
    if not os.path.isfile(binary):
        raise TdxhpUnavailable(f"static build finished but {binary} is missing")
    return binary
