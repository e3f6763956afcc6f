// Host-side pieces of the TD boot path, checked without TDX hardware: the boot parameters
// the trampoline reads, the GDT/IDT and page tables userspace builds (decoded back), the
// attribute runs that choose a private or shared alias, and the TD's CPUID preparation.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "runners/kvm/lib/tdx/tdx_abi.h"
#include "runners/kvm/lib/tdx/tdx_cpuid.h"
#include "runners/kvm/lib/tdx/tdx_layout.h"

namespace {

// Guest memory for the page-table builder: 4K pages from a fixed base, allocated in order.
struct Arena {
  uint64_t base = 0x180000;
  std::map<uint64_t, std::vector<uint8_t>> pages;
  uint64_t next = base;
  size_t limit = 64;

  static uint64_t alloc(void* ctx) {
    auto* a = static_cast<Arena*>(ctx);
    if (a->pages.size() >= a->limit) return 0;
    uint64_t gpa = a->next;
    a->next += 4096;
    a->pages[gpa] = std::vector<uint8_t>(4096, 0);
    return gpa;
  }
  static void* hva(void* ctx, uint64_t gpa) {
    auto* a = static_cast<Arena*>(ctx);
    auto it = a->pages.find(gpa);
    return it == a->pages.end() ? nullptr : it->second.data();
  }
  tdx_pt table() {
    tdx_pt pt{alloc(this), alloc, hva, this};
    return pt;
  }
};

constexpr uint64_t kShared47 = 1ULL << 47;

TEST(TdxBootParams, FillMatchesWhatTheTrampolineLoads) {
  std::vector<uint8_t> page(4096, 0xee);
  ASSERT_EQ(tdx_boot_params_fill(page.data(), 0x181000, 0x3000, 4095, 0xac6000, 0x401234), 0);
  const auto* bp = reinterpret_cast<const tdx_boot_params*>(page.data());
  // The assembly reads raw offsets: the struct must put each field there.
  uint32_t cr3;
  std::memcpy(&cr3, page.data() + TDX_BP_CR3, 4);
  EXPECT_EQ(cr3, 0x181000u);
  EXPECT_EQ(bp->cr0 & (TDX_CR0_PE | TDX_CR0_NE | TDX_CR0_PG), TDX_CR0_PE | TDX_CR0_NE | TDX_CR0_PG);
  EXPECT_TRUE(bp->cr4 & TDX_CR4_PAE);
  EXPECT_TRUE(bp->cr4 & TDX_CR4_MCE);  // fixed to 1 in a TD
  EXPECT_FALSE(bp->cr4 & (TDX_CR4_VMXE | TDX_CR4_SMXE));  // fixed to 0 in a TD
  EXPECT_EQ(bp->gdtr.base, TDX_BOOT_PARAMS_GPA + TDX_BP_GDT);
  EXPECT_EQ(bp->gdtr.limit, TDX_GDT_ENTRIES * 8 - 1);
  EXPECT_EQ(bp->idtr.base, 0x3000u);
  EXPECT_EQ(bp->idtr.limit, 4095);
  uint32_t esp, eip;
  uint16_t sel;
  std::memcpy(&esp, page.data() + TDX_BP_PER_VCPU + TDX_BP_VCPU_ESP, 4);
  std::memcpy(&eip, page.data() + TDX_BP_PER_VCPU + TDX_BP_VCPU_LJMP, 4);
  std::memcpy(&sel, page.data() + TDX_BP_PER_VCPU + TDX_BP_VCPU_LJMP + 4, 2);
  EXPECT_EQ(esp, 0xac6000u);
  EXPECT_EQ(eip, 0x401234u);
  EXPECT_EQ(sel, TDX_CODE64_SEL);
}

TEST(TdxBootParams, RefusesWhatA32BitTrampolineCannotLoad) {
  std::vector<uint8_t> page(4096);
  EXPECT_EQ(tdx_boot_params_fill(page.data(), 1ULL << 32, 0x3000, 4095, 0xac6000, 0x401000), -EINVAL);
  EXPECT_EQ(tdx_boot_params_fill(page.data(), 0x181000, 0x3000, 4095, 0xac6008, 0x401000), -EINVAL)
      << "stack top must keep 16-byte alignment";
  EXPECT_EQ(tdx_boot_params_fill(page.data(), 0x181000, 0x3000, 4095, 0xac6000, 0x1'0040'1000ULL), -EINVAL);
  EXPECT_EQ(tdx_boot_params_fill(page.data(), 0x181800, 0x3000, 4095, 0xac6000, 0x401000), -EINVAL);
}

TEST(TdxGdt, CodeSegmentIsLongModeRing0AndDataIsWritable) {
  uint64_t gdt[TDX_GDT_ENTRIES];
  tdx_gdt_fill(gdt);
  EXPECT_EQ(gdt[0], 0u);
  tdx_segment cs = tdx_gdt_decode(gdt[TDX_CODE64_SEL >> 3]);
  EXPECT_TRUE(cs.present);
  EXPECT_TRUE(cs.s);
  EXPECT_TRUE(cs.type & 0x8) << "executable";
  EXPECT_TRUE(cs.long_mode);
  EXPECT_FALSE(cs.db) << "L=1 requires D=0";
  EXPECT_EQ(cs.dpl, 0);
  tdx_segment ds = tdx_gdt_decode(gdt[TDX_DATA_SEL >> 3]);
  EXPECT_TRUE(ds.present);
  EXPECT_FALSE(ds.type & 0x8) << "data";
  EXPECT_TRUE(ds.type & 0x2) << "writable";
  EXPECT_EQ(ds.base, 0u);
  EXPECT_EQ(ds.limit, 0xFFFFFFFFu);
}

TEST(TdxIdt, GateRoundTripsA64BitHandler) {
  uint8_t slot[16];
  std::memset(slot, 0xff, sizeof(slot));
  tdx_idt_gate(slot, 0x0000'7fff'1234'5678ULL, TDX_CODE64_SEL);
  uint16_t sel = 0;
  uint8_t type = 0;
  bool present = false;
  EXPECT_EQ(tdx_idt_gate_decode(slot, &sel, &type, &present), 0x0000'7fff'1234'5678ULL);
  EXPECT_EQ(sel, TDX_CODE64_SEL);
  EXPECT_EQ(type, 0xE);  // 64-bit interrupt gate
  EXPECT_TRUE(present);
  EXPECT_EQ(slot[4], 0) << "IST 0";
  for (int i = 12; i < 16; ++i) EXPECT_EQ(slot[i], 0) << "reserved byte " << i;
}

TEST(TdxPageTables, MappingsDecodeBack) {
  Arena a;
  tdx_pt pt = a.table();
  ASSERT_EQ(tdx_pt_map(&pt, TDX_BOOT_CODE_GPA, TDX_BOOT_CODE_GPA, 0, false), 0);
  ASSERT_EQ(tdx_pt_map(&pt, 0x200000, 0x40000000, 1, true), 0);
  ASSERT_EQ(tdx_pt_map(&pt, 1ULL << 46, (1ULL << 32) | kShared47, 2, true), 0);
  uint64_t pa;
  unsigned level;
  bool w;
  ASSERT_TRUE(tdx_pt_walk(&pt, TDX_BOOT_CODE_GPA + 0xff0, &pa, &level, &w));
  EXPECT_EQ(pa, TDX_RESET_VECTOR_GPA);
  EXPECT_EQ(level, 0u);
  EXPECT_FALSE(w);
  ASSERT_TRUE(tdx_pt_walk(&pt, 0x200000 + 0x12345, &pa, &level, &w));
  EXPECT_EQ(pa, 0x40012345u);
  EXPECT_EQ(level, 1u);
  EXPECT_TRUE(w);
  ASSERT_TRUE(tdx_pt_walk(&pt, (1ULL << 46) + 0x3ff000, &pa, &level, &w));
  EXPECT_EQ(pa, (1ULL << 32) + 0x3ff000 + kShared47) << "the shared bit survives the walk";
  EXPECT_EQ(level, 2u);
  EXPECT_TRUE(tdxhp_gpa_is_shared(pa, 48));
  EXPECT_FALSE(tdx_pt_walk(&pt, 0x400000, &pa, &level, &w)) << "never mapped";
  EXPECT_FALSE(tdx_pt_walk(&pt, TDX_BOOT_CODE_GPA - 4096, &pa, &level, &w));
}

TEST(TdxPageTables, ConflictsAndBadOperandsAreRefused) {
  Arena a;
  tdx_pt pt = a.table();
  ASSERT_EQ(tdx_pt_map(&pt, 0x200000, 0x200000, 1, true), 0);
  EXPECT_EQ(tdx_pt_map(&pt, 0x200000, 0x200000, 1, true), 0) << "the same leaf again is fine";
  EXPECT_EQ(tdx_pt_map(&pt, 0x200000, 0x400000, 1, true), -EEXIST);
  EXPECT_EQ(tdx_pt_map(&pt, 0x201000, 0x201000, 0, true), -EEXIST) << "inside a 2M leaf";
  EXPECT_EQ(tdx_pt_map(&pt, 0x401000, 0x400000, 1, true), -EINVAL) << "misaligned va";
  EXPECT_EQ(tdx_pt_map(&pt, 1ULL << 47, 0, 0, true), -EINVAL) << "non-canonical";
  EXPECT_EQ(tdx_pt_map(&pt, 0, 0, 3, true), -EINVAL) << "no 512G leaves";
  a.limit = a.pages.size();
  EXPECT_EQ(tdx_pt_map(&pt, 1ULL << 40, 0, 0, true), -ENOMEM);
}

TEST(TdxPageTables, RangeUsesTheLargestAlignedLeaves) {
  Arena a;
  tdx_pt pt = a.table();
  // 4K head, two 2M blocks, 4K tail: a test slot that starts and ends off 2M boundaries.
  const uint64_t va = (1ULL << 40) + 0x1ff000, pa = 0x1001ff000, len = 0x1000 + 0x400000 + 0x2000;
  ASSERT_EQ(tdx_pt_map_range(&pt, va, pa, len, 1, true), 0);
  uint64_t got;
  unsigned level;
  for (uint64_t off = 0; off < len; off += 0x1000) {
    ASSERT_TRUE(tdx_pt_walk(&pt, va + off, &got, &level, nullptr)) << off;
    ASSERT_EQ(got, pa + off);
    const bool in_2m = off >= 0x1000 && off < 0x401000;
    ASSERT_EQ(level, in_2m ? 1u : 0u) << "offset 0x" << std::hex << off;
  }
  EXPECT_FALSE(tdx_pt_walk(&pt, va + len, &got, &level, nullptr));
  EXPECT_FALSE(tdx_pt_walk(&pt, va - 0x1000, &got, &level, nullptr));
}

// A boot layout as tdx_td.c makes it, then broken one way at a time.
struct BootLayout {
  Arena a;
  tdx_pt pt{};
  std::vector<uint8_t> params = std::vector<uint8_t>(4096);
  BootLayout() {
    pt = a.table();
    EXPECT_EQ(tdx_pt_map(&pt, TDX_BOOT_PARAMS_GPA, TDX_BOOT_PARAMS_GPA, 0, true), 0);
    EXPECT_EQ(tdx_pt_map(&pt, TDX_BOOT_CODE_GPA, TDX_BOOT_CODE_GPA, 0, false), 0);
    EXPECT_EQ(tdx_pt_map_range(&pt, 0x400000, 0x400000, 0x200000, 0, false), 0);  // ELF text
    EXPECT_EQ(tdx_pt_map_range(&pt, 0xab6000, 0x300000, 0x10000, 0, true), 0);    // stack
    EXPECT_EQ(tdx_pt_map(&pt, 0x3000, 0x3000, 0, true), 0);                       // IDT
    EXPECT_EQ(tdx_boot_params_fill(params.data(), pt.root, 0x3000, 4095, 0xac6000, 0x401000), 0);
  }
  int check(std::string* why) {
    char buf[160] = {};
    int r = tdx_boot_check(&pt, params.data(), buf, sizeof(buf));
    *why = buf;
    return r;
  }
};

TEST(TdxBootCheck, AcceptsTheLayoutTheTdBuilds) {
  BootLayout b;
  std::string why;
  EXPECT_EQ(b.check(&why), 0) << why;
}

TEST(TdxBootCheck, NamesEachBrokenExpectation) {
  std::string why;
  {
    BootLayout b;
    reinterpret_cast<tdx_boot_params*>(b.params.data())->vcpu[0].eip = 0x900000;
    EXPECT_EQ(b.check(&why), -EINVAL);
    EXPECT_NE(why.find("entry not mapped"), std::string::npos) << why;
  }
  {
    BootLayout b;
    reinterpret_cast<tdx_boot_params*>(b.params.data())->cr4 |= TDX_CR4_VMXE;
    EXPECT_EQ(b.check(&why), -EINVAL);
    EXPECT_NE(why.find("CR4"), std::string::npos) << why;
  }
  {
    BootLayout b;
    uint64_t* gdt = reinterpret_cast<uint64_t*>(b.params.data() + TDX_BP_GDT);
    gdt[TDX_CODE64_SEL >> 3] = 0x00CF9B000000FFFFULL;  // a 32-bit code segment (D=1, L=0)
    EXPECT_EQ(b.check(&why), -EINVAL);
    EXPECT_NE(why.find("64-bit code"), std::string::npos) << why;
  }
  {
    BootLayout b;
    reinterpret_cast<tdx_boot_params*>(b.params.data())->vcpu[0].esp = 0x500000;  // read-only text
    EXPECT_EQ(b.check(&why), -EINVAL);
    EXPECT_NE(why.find("stack"), std::string::npos) << why;
  }
  {
    BootLayout b;
    reinterpret_cast<tdx_boot_params*>(b.params.data())->cr3 = 0x9000;
    EXPECT_EQ(b.check(&why), -EINVAL);
    EXPECT_NE(why.find("CR3"), std::string::npos) << why;
  }
}

TEST(TdxAttrRuns, AgreeWithAPerPageReferenceAndStayMerged) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 200; ++round) {
    tdx_attr_map m{};
    std::vector<int> ref(96, -1);  // -1 never assigned, 0 shared, 1 private
    for (int op = 0; op < 12; ++op) {
      uint64_t s = rng() % 96, e = s + rng() % (97 - s);
      bool p = rng() & 1;
      tdx_attr_assign(&m, s, e, p);
      for (uint64_t g = s; g < e; ++g) ref[g] = p;
      for (uint64_t g = 0; g < 96; ++g)
        ASSERT_EQ(tdx_attr_is_private(&m, g), ref[g] == 1) << "round " << round << " gfn " << g;
      for (size_t i = 0; i < m.n; ++i) {
        ASSERT_LT(m.runs[i].start, m.runs[i].end);
        if (i) {
          ASSERT_LE(m.runs[i - 1].end, m.runs[i].start);
          ASSERT_FALSE(m.runs[i - 1].end == m.runs[i].start && m.runs[i - 1].private_ == m.runs[i].private_)
              << "adjacent equal runs not merged";
        }
      }
    }
    tdx_attr_free(&m);
  }
}

TEST(TdxAttrRuns, WholeSlotIsOneRun) {
  tdx_attr_map m{};
  tdx_attr_assign(&m, 0, 1 << 18, true);
  tdx_attr_assign(&m, 512, 1024, false);
  tdx_attr_assign(&m, 512, 1024, true);
  EXPECT_EQ(m.n, 1u) << "a 1G slot converted and back is one run, not 262144 entries";
  tdx_attr_free(&m);
}

kvm_cpuid_entry2 entry(uint32_t fn, uint32_t idx, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  kvm_cpuid_entry2 e{};
  e.function = fn;
  e.index = idx;
  e.eax = a;
  e.ebx = b;
  e.ecx = c;
  e.edx = d;
  return e;
}

TEST(TdxCpuid, DropsUnconfiguredLeavesAndMasksFixedBits) {
  std::vector<kvm_cpuid_entry2> e = {
      entry(0x1, 0, 0x806f8, 0, 0xffffffff, 0xffffffff),
      entry(0x6, 0, 0x4, 0, 0, 0),  // not configurable: dropped
      entry(0x7, 0, 0, 0xffffffff, 0xffffffff, 0),
      entry(0x80000008, 0, 0x3030, 0xffffffff, 0, 0),
  };
  std::vector<kvm_cpuid_entry2> cfg = {
      entry(0x1, 0, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff),
      entry(0x7, 0, 0xffffffff, 0x0000ffff, 0xffffffff, 0xffffffff),
      entry(0x80000008, 0, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff),
  };
  uint32_t n = tdx_cpuid_prepare(e.data(), static_cast<uint32_t>(e.size()), cfg.data(),
                                 static_cast<uint32_t>(cfg.size()));
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(e[0].function, 0x1u);
  EXPECT_FALSE(e[0].ecx & (1u << 5)) << "VMX is never offered to a TD";
  EXPECT_FALSE(e[0].edx & (1u << 17)) << "PSE36";
  EXPECT_EQ(e[1].function, 0x7u);
  EXPECT_EQ(e[1].ebx, 0x0000ffffu & ~((1u << 1) | (1u << 2))) << "config mask, TSC_ADJUST and SGX off";
  EXPECT_EQ(e[2].function, 0x80000008u);
  EXPECT_EQ(e[2].ebx, 1u << 9) << "WBNOINVD only";
}

TEST(TdxCpuid, GpawComesFromGuestPhysAddrSize) {
  std::vector<kvm_cpuid_entry2> e = {entry(0x80000008, 0, 0x3030, 0, 0, 0)};
  EXPECT_EQ(tdx_cpuid_gpaw(e.data(), 1), 0u) << "GuestPhysAddrSize 0: KVM refuses";
  ASSERT_TRUE(tdx_cpuid_set_gpaw(e.data(), 1, 48));
  EXPECT_EQ(tdx_cpuid_gpaw(e.data(), 1), 48u);
  EXPECT_EQ(e[0].eax & 0xff, 0x30u) << "PhysAddrSize untouched";
  EXPECT_EQ(tdxhp_shared_bit(tdx_cpuid_gpaw(e.data(), 1)), kShared47);
  ASSERT_TRUE(tdx_cpuid_set_gpaw(e.data(), 1, 52));
  EXPECT_EQ(tdxhp_shared_bit(tdx_cpuid_gpaw(e.data(), 1)), 1ULL << 51);
  std::vector<kvm_cpuid_entry2> none = {entry(0x1, 0, 0, 0, 0, 0)};
  EXPECT_FALSE(tdx_cpuid_set_gpaw(none.data(), 1, 48));
}

}  // namespace
