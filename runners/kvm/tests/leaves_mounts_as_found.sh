#!/bin/sh
# The kvm tests and a kvm run leave the host's mounts as they found them: on a host without a
# tracefs mount (a fresh Debian root), libtracefs would mount one and nothing unmounts it.
# Runs in a private mount namespace with tracefs unmounted; exit 77 (SKIP) where that cannot be set up.
kvm_tests=$1 tdxhp=$2 out=$3
unshare -m true 2>/dev/null || { echo "SKIP: unshare -m needs root"; exit 77; }
exec unshare -m sh -c '
  umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null
  if grep -q " tracefs " /proc/mounts; then echo "SKIP: cannot unmount tracefs here"; exit 77; fi
  "$0" --gtest_filter="MmuTrace*" >/dev/null 2>&1
  "$1" run --target kvm --cases 2 --no-progress --out "$2" >/dev/null 2>&1
  if grep -q " tracefs " /proc/mounts; then echo "FAIL: a tracefs mount was left behind"; grep " tracefs " /proc/mounts; exit 1; fi
  echo "ok: no tracefs mount left behind"' "$kvm_tests" "$tdxhp" "$out"
