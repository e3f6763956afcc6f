#!/bin/sh
# Builds the objects of libkvm-selftests (tools/testing/selftests/kvm/lib) into OUT.
# Source: the kernel tree in $KSRC when set, else Debian's linux-source-6.12 tarball,
# extracted under OUT. Cached: a stamp file names the source, so reruns cost nothing.
#   build_libkvm.sh OUT [KSRC]
set -eu
# Run from `make test`, the parent make's flags (-w, jobserver) would leak into the sub-makes
# and their "Entering directory" lines into the object list below.
unset MAKEFLAGS MFLAGS MAKELEVEL
out=$(realpath -m "$1")
ksrc=${2:-}
tarball=/usr/src/linux-source-6.12.tar.xz
mkdir -p "$out"

if [ -n "$ksrc" ]; then
  src=$(realpath "$ksrc")
  origin="KSRC=$src"
else
  [ -f "$tarball" ] || { echo "build_libkvm: no KSRC and no $tarball (apt-get install linux-source-6.12)" >&2; exit 1; }
  src="$out/linux-source-6.12"
  origin="$tarball $(stat -c %Y "$tarball")"
fi
stamp="$out/libkvm.stamp"
origin="$origin recipe=2"  # bump when this script's output changes
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$origin" ] && [ -f "$out/libkvm.a" ]; then
  exit 0
fi

if [ -z "$ksrc" ] && [ ! -f "$src/Makefile" ]; then
  echo "build_libkvm: extracting $tarball" >&2
  # Drivers, docs, sound and net are not needed for headers or the selftests lib.
  tar -C "$out" -xf "$tarball" \
    --exclude='linux-source-6.12/drivers' --exclude='linux-source-6.12/Documentation' \
    --exclude='linux-source-6.12/sound' --exclude='linux-source-6.12/net'
fi

# uAPI headers into the build dir (headers_install wants rsync; the installed tree is
# what `make headers` leaves in usr/include, so point the selftests at a copy of that).
hdr="$out/usr"
make -s -C "$src" O="$out/kbuild" ARCH=x86 headers >&2 2>/dev/null || make -s -C "$src" ARCH=x86 headers >&2
if [ -d "$out/kbuild/usr/include" ]; then hsrc="$out/kbuild/usr/include"; else hsrc="$src/usr/include"; fi
rm -rf "$hdr" && mkdir -p "$hdr" && cp -r "$hsrc" "$hdr/include"

sel="$src/tools/testing/selftests/kvm"
libout="$out/obj"
mkdir -p "$libout"
# The list of lib objects comes from the selftests Makefile itself (LIBKVM, x86 part).
objs=$(make -s --no-print-directory -C "$sel" ARCH=x86 OUTPUT="$libout" INSTALL_HDR_PATH="$hdr" \
        --eval='print-libkvm-objs: ; @echo $(LIBKVM_C_OBJ) $(LIBKVM_S_OBJ) $(LIBKVM_STRING_OBJ)' print-libkvm-objs)
# string_override.o (mem*/strnlen without PLT) matters: the guest runs the ELF image as
# loaded from disk, where libc's GOT entries are not relocated.
# -fPIE only so the objects also link into PIE test tools; tdxhp itself links -no-pie
# (libkvm loads the running ELF into the guest at its link-time addresses).
make -s -C "$sel" ARCH=x86 OUTPUT="$libout" INSTALL_HDR_PATH="$hdr" \
  KHDR_INCLUDES="-isystem $hdr/include" EXTRA_CFLAGS="-fPIE" -j"$(nproc)" $objs >&2

# kvm_util.o has a constructor that prints a seed to stdout and exits when the kvm module
# is absent; tdxhp must start anywhere, so drop it and call kvm_selftest_init() in the
# worker that owns the VM instead.
for o in $objs; do
  case "$o" in */lib/kvm_util.o) objcopy --remove-section=.init_array "$o" ;; esac
done
# memstress (lib and x86 parts share a basename) is a perf-test helper tdxhp does not use.
# string_override.o is linked as an object by every binary (CMakeLists.txt); a copy in the
# archive too would be pulled in first wherever mem* is still undefined: duplicate symbols.
keep=$(for o in $objs; do case "$o" in */memstress.o|*/string_override.o) ;; *) echo "$o" ;; esac; done)
rm -f "$out/libkvm.a"
ar rcs "$out/libkvm.a" $keep
# Headers the C side compiles against, copied so the build never reaches into $src again.
# tools/include reaches tools/arch by relative paths, so keep that layout.
rm -rf "$out/include" && mkdir -p "$out/include/selftests" "$out/include/tools/arch/x86"
cp -r "$sel/include/." "$out/include/selftests/"
cp -r "$src/tools/include" "$out/include/tools/include"
cp -r "$src/tools/arch/x86/include" "$out/include/tools/arch/x86/include"
# kselftest.h and friends live one level up, next to the selftests Makefile.
cp "$sel/../kselftest.h" "$sel/../kselftest_harness.h" "$out/include/selftests/"
echo "$origin" > "$stamp"
