// TDX encodings the tdx flavour depends on, checked without TDX hardware.
#include <gtest/gtest.h>

#include "domain/types.h"
#include "runners/kvm/lib/tdx/tdx_abi.h"

TEST(TdxAbi, AcceptRcxIsLevelAlignedGpaOrLevel) {
  uint64_t rcx = 0;
  ASSERT_TRUE(tdxhp_accept_rcx(0x200000, TDXHP_ACCEPT_2M, &rcx));
  EXPECT_EQ(rcx, 0x200001u);
  ASSERT_TRUE(tdxhp_accept_rcx(0x201000, TDXHP_ACCEPT_4K, &rcx));
  EXPECT_EQ(rcx, 0x201000u);
}

TEST(TdxAbi, AcceptRejectsMisalignedGpaAndBadLevel) {
  uint64_t rcx = 7;
  EXPECT_FALSE(tdxhp_accept_rcx(0x201000, TDXHP_ACCEPT_2M, &rcx));  // 4K-aligned only
  EXPECT_FALSE(tdxhp_accept_rcx(0x200000, TDXHP_ACCEPT_1G, &rcx));
  // The module takes 4K and 2M only (tdg_mem_page_accept.c:162): even aligned, 1G is refused.
  EXPECT_FALSE(tdxhp_accept_rcx(0x40000000, TDXHP_ACCEPT_1G, &rcx));
  EXPECT_FALSE(tdxhp_accept_rcx(0, 3, &rcx));                        // no 512G accept
  EXPECT_EQ(rcx, 7u);
}

TEST(TdxAbi, LevelsMatchDomainLevels) {
  // Accept level numbers are the domain's Level values (DOMAIN.md: 0=4K 1=2M 2=1G).
  EXPECT_EQ(tdxhp_level_bytes(static_cast<unsigned>(tdxhp::Level::L2M)),
            tdxhp::pages_in(tdxhp::Level::L2M) * 4096);
  EXPECT_EQ(tdxhp_level_bytes(static_cast<unsigned>(tdxhp::Level::L1G)),
            tdxhp::pages_in(tdxhp::Level::L1G) * 4096);
}

TEST(TdxAbi, StatusDecoding) {
  unsigned level = 9;
  EXPECT_TRUE(tdxhp_tdx_is_size_mismatch(0xC0000B0B00000001ULL, &level));
  EXPECT_EQ(level, 1u);
  EXPECT_FALSE(tdxhp_tdx_is_size_mismatch(tdxhp::tdx::kPageAlreadyAccepted, &level));
  EXPECT_TRUE(tdxhp_tdx_is_error(tdxhp::tdx::kOperandBusy | 0x1));
  EXPECT_FALSE(tdxhp_tdx_is_error(tdxhp::tdx::kPageAlreadyAccepted));  // warning class
  EXPECT_EQ(tdxhp_tdx_status_class(tdxhp::tdx::kOperandBusy | 0x92), tdxhp::tdx::kOperandBusy);
  // The C constants agree with the shared vocabulary.
  EXPECT_EQ(TDXHP_TDX_PAGE_SIZE_MISMATCH, tdxhp::tdx::kPageSizeMismatch);
  EXPECT_EQ(TDXHP_TDX_OPERAND_INVALID, tdxhp::tdx::kOperandInvalid);
  EXPECT_EQ(TDXHP_TDX_OPERAND_ID_RCX, tdxhp::tdx::kOperandIdRcx);
  EXPECT_EQ(TDXHP_TDG_MEM_PAGE_ACCEPT, tdxhp::tdx::kLeafMemPageAccept);
  EXPECT_EQ(TDXHP_TDVMCALL_MAP_GPA, tdxhp::tdx::kVmcallMapGpa);
}

TEST(TdxAbi, SharedBitFollowsGpaWidth) {
  EXPECT_EQ(tdxhp_shared_bit(48), 1ULL << 47);
  EXPECT_EQ(tdxhp_shared_bit(52), 1ULL << 51);
  uint64_t gpa = 0x12345000;
  uint64_t shared = tdxhp_gpa_shared(gpa, 52);
  EXPECT_TRUE(tdxhp_gpa_is_shared(shared, 52));
  EXPECT_FALSE(tdxhp_gpa_is_shared(gpa, 52));
  EXPECT_EQ(tdxhp_gpa_private(shared, 52), gpa);
  EXPECT_FALSE(tdxhp_gpa_is_shared(shared, 48));  // bit 51 is not the 48-bit TD's shared bit
}

TEST(TdxAbi, MapGpaExitDecoding) {
  auto r = tdxhp_decode_map_gpa(tdxhp_gpa_shared(0x400000, 48), 512, 0, 48);
  EXPECT_EQ(r.gpa, 0x400000u);
  EXPECT_EQ(r.npages, 512u);
  EXPECT_FALSE(r.to_private);
  r = tdxhp_decode_map_gpa(0x400000, 1, 1 << 4, 48);
  EXPECT_TRUE(r.to_private);
}

TEST(TdxAbi, ExitClassification) {
  EXPECT_EQ(tdxhp_classify_exit(3, false, 12), TDXHP_EXIT_CONVERT);       // MapGPA hypercall
  EXPECT_EQ(tdxhp_classify_exit(3, false, 9), TDXHP_EXIT_UNEXPECTED);
  EXPECT_EQ(tdxhp_classify_exit(39, false, 0), TDXHP_EXIT_CONVERT);       // memory fault
  EXPECT_EQ(tdxhp_classify_exit(2, true, 0), TDXHP_EXIT_GUEST_DONE);      // ucall port IO
  EXPECT_EQ(tdxhp_classify_exit(2, false, 0), TDXHP_EXIT_UNEXPECTED);
  EXPECT_EQ(tdxhp_classify_exit(8, false, 0), TDXHP_EXIT_VM_DEAD);        // shutdown
  EXPECT_EQ(tdxhp_classify_exit(17, false, 0), TDXHP_EXIT_VM_DEAD);       // internal error
}

TEST(TdxAbi, MapGpaExitDecodingWith52BitGpaw) {
  // A 5-level TD's shared bit is 51; bit 47 is then an ordinary address bit and must stay.
  const uint64_t gpa = (1ULL << 47) | 0x200000;
  auto r = tdxhp_decode_map_gpa(tdxhp_gpa_shared(gpa, 52), 512, 0, 52);
  EXPECT_EQ(r.gpa, gpa);
  EXPECT_FALSE(r.to_private);
  // args[2] carries KVM_MAP_GPA_RANGE_ENCRYPTED (bit 4) for "to private"; page-size flags
  // in bits 0-1 must not be read as a direction.
  EXPECT_FALSE(tdxhp_decode_map_gpa(gpa, 1, 0x1, 52).to_private);
  EXPECT_TRUE(tdxhp_decode_map_gpa(gpa, 1, 0x10 | 0x1, 52).to_private);
}

TEST(TdxAbi, AcceptStatusForEachOutcomeOfSemantics) {
  // SEMANTICS.md Accept: success, already accepted (a warning, not an error), size mismatch
  // carrying the requested level, operand invalid for a misaligned gpa.
  EXPECT_FALSE(tdxhp_tdx_is_error(TDXHP_TDX_SUCCESS));
  EXPECT_FALSE(tdxhp_tdx_is_error(TDXHP_TDX_PAGE_ALREADY_ACCEPTED));
  unsigned level = 9;
  EXPECT_TRUE(tdxhp_tdx_is_size_mismatch(TDXHP_TDX_PAGE_SIZE_MISMATCH | TDXHP_ACCEPT_1G, &level));
  EXPECT_EQ(level, static_cast<unsigned>(TDXHP_ACCEPT_1G));
  EXPECT_TRUE(tdxhp_tdx_is_error(TDXHP_TDX_PAGE_SIZE_MISMATCH | TDXHP_ACCEPT_2M));
  EXPECT_TRUE(tdxhp_tdx_is_error(TDXHP_TDX_OPERAND_INVALID));
  EXPECT_FALSE(tdxhp_tdx_is_size_mismatch(TDXHP_TDX_OPERAND_INVALID, &level));
}
