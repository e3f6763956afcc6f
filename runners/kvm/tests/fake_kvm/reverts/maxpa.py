# One review item with 6114b3f's behaviour put back (check.sh applies it, then restores).
p='runners/kvm/lib/tdx/tdx_td.c'; s=open(p).read()
o='if (maxpa && maxpa < td->gpaw) {'
assert o in s; s=s.replace(o,'if (0) {')
open(p,'w').write(s)
