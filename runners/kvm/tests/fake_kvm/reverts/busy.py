# One review item with 6114b3f's behaviour put back (check.sh applies it, then restores).
p='runners/kvm/lib/tdx/tdx.c'; s=open(p).read()
o='if (r != -EBUSY && r != -EAGAIN && r != -EINTR)'
assert o in s; s=s.replace(o,'if (1)')
open(p,'w').write(s)
