#!/bin/sh
# Builds an exported reproducer (tdxhp export --c) against the libkvm-selftests that
# runners/kvm/lib/build_libkvm.sh made from linux-source-6.12 (or KSRC), with the selftests'
# own flags. STATIC=1 links it -static (for the vm target's initramfs).
# TDX_STANDIN=DIR compiles a TD reproducer to an object only, against the stand-in headers in
# DIR (runners/export/tests/fake_tdx) in front of 6.12's: there is no TDX library to link here.
#   build_repro.sh LIBKVM_DIR REPRO.c OUTPUT
set -eu
libkvm=$1 src=$2 out=$3
[ -f "$libkvm/libkvm.a" ] || { echo "build_repro: no $libkvm/libkvm.a (make build makes it)" >&2; exit 2; }
inc=$libkvm/include
static=
[ "${STATIC:-0}" = 1 ] && static=-static
standin=
link="-no-pie $static $libkvm/obj/lib/string_override.o $libkvm/libkvm.a -lpthread"
if [ -n "${TDX_STANDIN:-}" ]; then
  standin="-I$TDX_STANDIN"
  link=-c
fi
# TDXHP_LIBKVM_STRIPPED: tdxhp's libkvm.a drops kvm_util.o's constructor, so main calls it.
# shellcheck disable=SC2086 # $link and $standin are word lists
exec ${CC:-gcc} -std=gnu11 -O1 -g -Wall -Werror -D_GNU_SOURCE -DCONFIG_64BIT \
  -DTDXHP_LIBKVM_STRIPPED \
  -fno-stack-protector -fno-strict-aliasing -fno-builtin-memcmp -fno-builtin-memcpy -fno-builtin-memset \
  -fno-builtin-strnlen -U_FORTIFY_SOURCE \
  $standin -I"$inc/selftests" -I"$inc/selftests/x86_64" -I"$inc/tools/include" -I"$inc/tools/arch/x86/include" \
  -isystem "$libkvm/usr/include" \
  -o "$out" "$src" $link
