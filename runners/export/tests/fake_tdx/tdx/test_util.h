/* Stand-in for intel/tdx tools/testing/selftests/kvm/include/x86/tdx/test_util.h (stored
 * version f7ff24493c00; lib/x86/tdx/test_util.c 0aca2d5f9795): what a TD reproducer uses.
 * Declarations only, written for tdxhp. */
#ifndef TDXHP_FAKE_TDX_TEST_UTIL_H
#define TDXHP_FAKE_TDX_TEST_UTIL_H

#include <stdbool.h>

#include "tdcall.h"

bool is_tdx_enabled(void);

#endif
