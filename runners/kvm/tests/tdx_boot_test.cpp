// The reset-vector trampoline (lib/tdx/tdx_boot.S) as the bytes tdx_td.c copies below 4G: the
// reset vector must be the last 16 bytes of the page and jump to the start of the copy, and
// the code must read the boot parameters where tdx_layout.h puts them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "runners/kvm/lib/tdx/tdx_guest.h"
#include "runners/kvm/lib/tdx/tdx_layout.h"

namespace {

size_t boot_size() { return static_cast<size_t>(tdx_boot_end - tdx_boot_start); }

TEST(TdxBoot, ResetVectorIsTheLast16BytesAndFitsThePage) {
  EXPECT_EQ(tdx_boot_end - tdx_reset_vector, 16);
  EXPECT_LE(boot_size(), 4096u);
  // Copied so that the copy ends at 4G: the reset vector sits on 0xFFFFFFF0.
  const uint64_t copy_gpa = 0x1'0000'0000ULL - boot_size();
  EXPECT_EQ(copy_gpa + static_cast<uint64_t>(tdx_reset_vector - tdx_boot_start), TDX_RESET_VECTOR_GPA);
  EXPECT_GE(copy_gpa, static_cast<uint64_t>(TDX_BOOT_CODE_GPA));
}

TEST(TdxBoot, ResetVectorJumpsToTheCopiedTrampoline) {
  const auto* rv = reinterpret_cast<const uint8_t*>(tdx_reset_vector);
  ASSERT_EQ(rv[0], 0xE9) << "jmp rel32";
  int32_t rel;
  std::memcpy(&rel, rv + 1, 4);
  const uint64_t target = TDX_RESET_VECTOR_GPA + 5 + static_cast<int64_t>(rel);
  EXPECT_EQ(target, 0x1'0000'0000ULL - boot_size());
  EXPECT_EQ(static_cast<uint8_t>(tdx_boot_start[0]), 0xFA) << "cli first";
}

TEST(TdxBoot, TrampolineLoadsTheParametersBlockGpa) {
  // movl $TDX_BOOT_PARAMS_GPA, %ebx right after cli.
  const auto* p = reinterpret_cast<const uint8_t*>(tdx_boot_start);
  ASSERT_EQ(p[1], 0xBB);
  uint32_t imm;
  std::memcpy(&imm, p + 2, 4);
  EXPECT_EQ(imm, static_cast<uint32_t>(TDX_BOOT_PARAMS_GPA));
  // ...and ends with the far jump through this vCPU's m16:32 pointer: ljmp *LJMP(%eax).
  const uint8_t ljmp[] = {0xFF, 0x68, TDX_BP_VCPU_LJMP};
  EXPECT_EQ(std::memcmp(p + (tdx_reset_vector - tdx_boot_start) - 3, ljmp, 3), 0);
}

}  // namespace
