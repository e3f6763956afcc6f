/* Stand-in for intel/tdx tools/testing/selftests/kvm/include/x86/tdx/tdcall.h (the TDCALL and
 * TDVMCALL assembly wrappers). A TD reproducer calls none of them directly, only the helpers
 * of tdx.h built on them. Written for tdxhp; declares nothing. */
#ifndef TDXHP_FAKE_TDX_TDCALL_H
#define TDXHP_FAKE_TDX_TDCALL_H
#endif
