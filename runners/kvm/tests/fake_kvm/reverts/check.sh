#!/bin/bash
# Puts 6114b3f's behaviour back, one review item at a time, and shows which fake-KVM and TDCALL tests
# fail (each must). Needs a clean tree under runners/kvm (it restores with git checkout) and a
# configured build-test. Run from the repository root: runners/kvm/tests/fake_kvm/reverts/check.sh
set -u
here=$(dirname "$0")
if [ -n "$(git status --porcelain -- runners/kvm)" ]; then
  echo "check.sh: runners/kvm has uncommitted changes; commit or stash them first" >&2
  exit 2
fi
# veinfo is expected to show 0: 6114b3f's asm is safe with today's compiler (review item D).
for item in a flags b c gpaw maxpa busy fault dead veinfo; do
  python3 "$here/$item.py" || { echo "$item: the revert no longer applies (code moved)"; continue; }
  if cmake --build build-test -j2 --target kvm_fake_tests kvm_tests > /tmp/tdxhp-revert-$item.log 2>&1; then
    out=$(ctest --test-dir build-test -j2 -R "FakeKvm|TdcallOnHost" 2>&1 | grep "(Failed)")
    echo "== $item: $(printf '%s' "$out" | grep -c . ) failing"; printf '%s\n' "$out"
  else
    echo "== $item: build failed (see /tmp/tdxhp-revert-$item.log)"
  fi
  git checkout -q -- runners/kvm
done
cmake --build build-test -j2 --target kvm_fake_tests kvm_tests > /dev/null 2>&1
