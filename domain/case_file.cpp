#include "domain/case_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "domain/describe.h"

namespace tdxhp {

using nlohmann::json;

namespace {

// At most this much of a bad value goes into an error message: a short, escaped prefix, and
// for an array or object only its kind (printing a deeply nested value recurses).
constexpr size_t kQuoteChars = 40;
std::string quote(const json& j) {
  if (j.is_array()) return "an array of " + std::to_string(j.size());
  if (j.is_object()) return "an object";
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);  // ASCII, control characters escaped
  return s.size() <= kQuoteChars ? s : s.substr(0, kQuoteChars) + "...";
}
std::string quote(const std::string& s) { return quote(json(s)); }

// A cursor into the document that knows its own path ("ops[3].level") for error messages.
struct Field {
  const json& j;
  std::string path;
  const std::string& origin;

  [[noreturn]] void fail(const std::string& what) const {
    throw CaseError(origin + ": " + (path.empty() ? "document" : path) + ": " + what);
  }
  Field at(const std::string& key) const {
    if (!j.is_object()) fail("expected an object");
    auto it = j.find(key);
    std::string p = path.empty() ? key : path + "." + key;
    if (it == j.end()) throw CaseError(origin + ": " + p + ": missing");
    return {*it, p, origin};
  }
  bool has(const std::string& key) const { return j.is_object() && j.contains(key); }
  Field index(size_t i) const { return {j[i], path + "[" + std::to_string(i) + "]", origin}; }

  uint64_t u64() const {
    if (j.is_number_unsigned()) return j.get<uint64_t>();
    if (j.is_number_integer()) {
      if (j.get<int64_t>() < 0) fail("must not be negative, got " + quote(j));
      return j.get<uint64_t>();
    }
    if (j.is_string()) {
      const std::string s = j.get<std::string>();
      if (auto v = parse_u64(s)) return *v;
      fail("expected a number (decimal or 0x hex, at most 2^64-1), got " + quote(s));
    }
    if (j.is_number_float()) fail("expected a whole number, got " + quote(j));
    fail("expected a number, got " + std::string(j.type_name()));
  }
  std::string str() const {
    if (!j.is_string()) fail("expected a string, got " + std::string(j.type_name()));
    return j.get<std::string>();
  }
  bool boolean() const {
    if (!j.is_boolean()) fail("expected true or false, got " + quote(j));
    return j.get<bool>();
  }
  const json& array() const {
    if (!j.is_array()) fail("expected an array, got " + std::string(j.type_name()));
    return j;
  }
  template <class E>
  E one_of(std::optional<E> (*parse)(std::string_view), std::initializer_list<std::string_view> names) const {
    std::string s = str();
    if (auto v = parse(s)) return *v;
    std::string all;
    for (auto n : names) all += (all.empty() ? "" : ", ") + std::string(n);
    fail("expected one of " + all + ", got " + quote(s));
  }
};

Level level_of(const Field& f) { return f.one_of<Level>(parse_level, {"4K", "2M", "1G"}); }
Attr attr_of(const Field& f) { return f.one_of<Attr>(parse_attr, {"private", "shared"}); }
BackingKind backing_of(const Field& f) {
  return f.one_of<BackingKind>(parse_backing, {"4k", "thp-2m", "hugetlb-2m", "hugetlb-1g"});
}

GfnRange range_of(const Field& f) {
  GfnRange r{f.at("gfn").u64(), f.at("npages").u64()};
  if (r.start >= kGfnLimit) f.at("gfn").fail("gfn " + hex(r.start) + " is beyond the 52-bit GPA space");
  if (r.npages > kGfnLimit - r.start)
    f.at("npages").fail("range " + hex(r.start) + " + " + hex(r.npages) + " runs past the 52-bit GPA space");
  return r;
}

Gfn gfn_of(const Field& f) {
  Gfn g = f.at("gfn").u64();
  if (g >= kGfnLimit) f.at("gfn").fail("gfn " + hex(g) + " is beyond the 52-bit GPA space");
  return g;
}

Op op_of(const Field& f) {
  const std::string kind = f.at("op").str();
  if (kind == "convert") return Convert{range_of(f), attr_of(f.at("to"))};
  if (kind == "punch") return PunchHole{range_of(f)};
  if (kind == "prefault") return Prefault{range_of(f)};
  const bool queued = f.has("queued") && f.at("queued").boolean();
  if (kind == "access") {
    Access a{gfn_of(f), f.has("write") && f.at("write").boolean(), 0, queued};
    if (f.has("value")) a.value = f.at("value").u64();
    return a;
  }
  if (kind == "accept") return Accept{gfn_of(f), level_of(f.at("level")), queued};
  if (kind == "discard-shared") return DiscardShared{range_of(f)};
  if (kind == "map-gpa") return MapGpa{range_of(f), attr_of(f.at("to"))};
  if (kind == "pin") return Pin{range_of(f)};
  if (kind == "unpin") return Unpin{range_of(f)};
  if (kind == "delete-slot" || kind == "add-slot") {
    const uint64_t id = f.at("slot").u64();
    if (id > UINT32_MAX) f.at("slot").fail("expected a memslot id, got " + std::to_string(id));
    if (kind == "delete-slot") return DeleteSlot{static_cast<uint32_t>(id)};
    return AddSlot{static_cast<uint32_t>(id)};
  }
  if (kind == "inject") {
    Inject in;
    in.site = f.at("site").one_of<FaultSite>(parse_fault_site, {"block", "track", "demote", "remove", "wbinvd", "aug",
                                                                "sept-add", "split-cache-topup", "folio-split"});
    if (is_seamcall_site(in.site)) {
      // "status": a TDX status by name or 0x value; format 1 files may say "fault": busy or
      // interrupted-restartable instead.
      const Field st = f.has("status") ? f.at("status") : f.at("fault");
      const auto v = parse_tdx_status(st.str());
      if (!v || *v == tdx::kSuccess)
        st.fail("expected a TDX error status (" + tdx_status_names() + ", or a 0x value), got " + quote(st.str()));
      in.status = *v;
    } else {
      if (f.has("status")) f.at("status").fail("an allocation site fails with -ENOMEM, not a TDX status");
      if (f.at("fault").str() != "enomem")
        f.at("fault").fail("expected \"enomem\" at " + std::string(name(in.site)) + ", got " + quote(f.at("fault").str()));
      in.status = 0;
    }
    uint64_t count = f.has("count") ? f.at("count").u64() : 1;
    if (count == 0 || count > 1000000) f.at("count").fail("expected 1..1000000, got " + std::to_string(count));
    in.count = static_cast<uint32_t>(count);
    return in;
  }
  f.at("op").fail("unknown op kind " + quote(kind) +
                  " (known: convert, punch, prefault, access, accept, map-gpa, pin, unpin, inject, discard-shared, "
                  "delete-slot, add-slot)");
}

Config config_of(const Field& f) {
  Config c;
  const json& slots = f.at("slots").array();
  if (slots.empty()) f.at("slots").fail("at least one memslot is needed");
  if (slots.size() > kMaxSlots)
    f.at("slots").fail("at most " + std::to_string(kMaxSlots) + " memslots, got " + std::to_string(slots.size()));
  for (size_t i = 0; i < slots.size(); ++i) {
    Field s = f.at("slots").index(i);
    Memslot m;
    const uint64_t id = s.has("id") ? s.at("id").u64() : i;
    if (id > UINT32_MAX) s.at("id").fail("expected a memslot id (at most 2^32-1), got " + std::to_string(id));
    m.id = static_cast<uint32_t>(id);
    GfnRange r = range_of(s);
    m.base_gfn = r.start;
    m.npages = r.npages;
    if (m.npages == 0) s.at("npages").fail("a memslot needs at least one page");
    if (s.has("gmem_offset")) m.gmem_offset = s.at("gmem_offset").u64();
    if (s.has("hva_offset")) m.hva_offset = s.at("hva_offset").u64();
    c.slots.push_back(m);
  }
  if (f.has("backing")) c.backing = backing_of(f.at("backing"));
  c.shared_backing = f.has("shared_backing") ? backing_of(f.at("shared_backing")) : c.backing;
  if (f.has("attr_mode")) c.attr_mode = f.at("attr_mode").one_of<AttrMode>(parse_attr_mode, {"per-vm", "in-place"});
  if (f.has("contract")) c.contract = f.at("contract").one_of<Contract>(parse_contract, {"folio", "contiguous"});
  if (f.has("build_pages")) {
    const json& b = f.at("build_pages").array();
    for (size_t i = 0; i < b.size(); ++i) c.build_pages.push_back(range_of(f.at("build_pages").index(i)));
  }
  if (f.has("tdx_huge_page")) c.tdx_huge_page = f.at("tdx_huge_page").boolean();
  if (f.has("features")) {
    Field ft = f.at("features");
    if (ft.has("enhanced_demote_interruptibility"))
      c.features.enhanced_demote_interruptibility = ft.at("enhanced_demote_interruptibility").boolean();
    if (ft.has("dynamic_pamt")) c.features.dynamic_pamt = ft.at("dynamic_pamt").boolean();
  }
  if (f.has("max_private_level")) {
    c.max_private_level = level_of(f.at("max_private_level"));
    if (c.max_private_level == Level::L4K) f.at("max_private_level").fail("expected 2M or 1G");
  }
  if (f.has("initially_private")) c.initially_private = f.at("initially_private").boolean();
  if (f.has("vcpus")) {
    uint64_t v = f.at("vcpus").u64();
    if (v == 0 || v > 64) f.at("vcpus").fail("expected 1..64, got " + std::to_string(v));
    c.vcpus = static_cast<uint32_t>(v);
  }
  if (std::string err = validate_config(c); !err.empty()) f.fail(err);
  return c;
}

json range_json(const GfnRange& r) { return {{"gfn", hex(r.start)}, {"npages", r.npages}}; }

json op_json(const Op& op) {
  json j = std::visit(
      [](const auto& o) -> json {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Convert> || std::is_same_v<T, MapGpa>) {
          json r = range_json(o.range);
          r["to"] = std::string(name(o.to));
          return r;
        } else if constexpr (std::is_same_v<T, PunchHole> || std::is_same_v<T, Prefault> ||
                             std::is_same_v<T, Pin> || std::is_same_v<T, Unpin> || std::is_same_v<T, DiscardShared>) {
          return range_json(o.range);
        } else if constexpr (std::is_same_v<T, Access>) {
          json r = {{"gfn", hex(o.gfn)}, {"write", o.write}};
          if (o.write) r["value"] = hex(o.value);
          if (o.queued) r["queued"] = true;
          return r;
        } else if constexpr (std::is_same_v<T, Accept>) {
          json r = {{"gfn", hex(o.gfn)}, {"level", std::string(name(o.level))}};
          if (o.queued) r["queued"] = true;
          return r;
        } else if constexpr (std::is_same_v<T, DeleteSlot> || std::is_same_v<T, AddSlot>) {
          return {{"slot", o.slot}};
        } else {
          json r = {{"site", std::string(name(o.site))}, {"count", o.count}};
          if (!is_seamcall_site(o.site))
            r["fault"] = "enomem";
          else
            r["status"] = tdx::status_class(o.status) == o.status ? tdx_status_name(o.status) : hex(o.status);
          return r;
        }
      },
      op);
  j["op"] = std::string(op_kind(op));
  return j;
}

json config_json(const Config& c) {
  json slots = json::array();
  for (auto& m : c.slots) {
    json s = range_json(m.range());
    s["id"] = m.id;
    s["gmem_offset"] = hex(m.gmem_offset);
    if (m.hva_offset) s["hva_offset"] = hex(m.hva_offset);
    slots.push_back(s);
  }
  json build = json::array();
  for (auto& r : c.build_pages) build.push_back(range_json(r));
  return {{"slots", slots},
          {"backing", std::string(name(c.backing))},
          {"shared_backing", std::string(name(c.shared_backing))},
          {"attr_mode", std::string(name(c.attr_mode))},
          {"contract", std::string(name(c.contract))},
          {"build_pages", build},
          {"tdx_huge_page", c.tdx_huge_page},
          {"features",
           {{"enhanced_demote_interruptibility", c.features.enhanced_demote_interruptibility},
            {"dynamic_pamt", c.features.dynamic_pamt}}},
          {"max_private_level", std::string(name(c.max_private_level))},
          {"initially_private", c.initially_private},
          {"vcpus", c.vcpus}};
}

std::vector<std::string> strings_of(const Field& f) {
  std::vector<std::string> out;
  const json& a = f.array();
  for (size_t i = 0; i < a.size(); ++i) out.push_back(f.index(i).str());
  return out;
}

}  // namespace

std::string validate_config(const Config& c) {
  if (c.slots.size() > kMaxSlots) return "slots: at most " + std::to_string(kMaxSlots) + " memslots";
  for (size_t i = 0; i < c.slots.size(); ++i) {
    const Memslot& a = c.slots[i];
    const std::string at = "slots[" + std::to_string(i) + "]";
    if (a.npages == 0) return at + ".npages: a memslot needs at least one page";
    if (a.base_gfn >= kGfnLimit || a.npages > kGfnLimit - a.base_gfn)
      return at + ": " + describe(a.range()) + " runs past the 52-bit GPA space";
    // The guest_memfd file and the shared HVA mapping are as large as the GPA space at most.
    if (a.gmem_offset > kGfnLimit - a.npages)
      return at + ".gmem_offset: " + hex(a.gmem_offset) + " + " + hex(a.npages) + " pages runs past the largest " +
             "guest_memfd tdxhp models (2^40 pages)";
    if (a.hva_offset > kGfnLimit - a.npages)
      return at + ".hva_offset: " + hex(a.hva_offset) + " + " + hex(a.npages) + " pages runs past 2^40 pages";
    for (size_t k = 0; k < i; ++k) {
      if (c.slots[k].range().overlaps(a.range()))
        return "slots[" + std::to_string(i) + "]: " + describe(a.range()) + " overlaps slots[" + std::to_string(k) +
               "] " + describe(c.slots[k].range());
      if (c.slots[k].id == a.id) return "slots[" + std::to_string(i) + "].id: duplicate id " + std::to_string(a.id);
    }
  }
  // TDH.MEM.PAGE.ADD runs once per 4K build page, into private memory of a slot.
  uint64_t build_total = 0;
  for (size_t i = 0; i < c.build_pages.size(); ++i) {
    const GfnRange& r = c.build_pages[i];
    const std::string at = "build_pages[" + std::to_string(i) + "]";
    if (r.npages > kMaxBuildPages || (build_total += r.npages) > kMaxBuildPages)
      return at + ".npages: at most " + std::to_string(kMaxBuildPages) + " build pages in all";
    const bool in_slot = std::any_of(c.slots.begin(), c.slots.end(), [&](const Memslot& m) { return m.range().covers(r); });
    if (!in_slot) return at + ": " + describe(r) + " is not inside one memslot";
    if (!c.initially_private) return at + ": build pages are private memory; initially_private is false";
  }
  return {};
}

std::string validate_prefaults(const Config& c, const std::vector<Op>& ops) {
  const uint64_t folio = pages_in(page_level(c.backing));
  for (size_t i = 0; i < ops.size(); ++i)
    if (const auto* p = std::get_if<Prefault>(&ops[i]); p && p->range.npages / folio > kMaxPrefaultFolios)
      return "ops[" + std::to_string(i) + "].npages: a prefault faults in at most " +
             std::to_string(kMaxPrefaultFolios) + " folios (" + describe(GfnRange{0, kMaxPrefaultFolios * folio}) +
             " of " + std::string(name(c.backing)) + "), got " + describe(p->range);
  return {};
}

std::string validate_op(const Op& op) {
  auto check = [](const GfnRange& r) -> std::string {
    if (r.start >= kGfnLimit || r.npages > kGfnLimit - r.start)
      return describe(r) + " runs past the 52-bit GPA space";
    return {};
  };
  return std::visit(
      [&](const auto& o) -> std::string {
        if constexpr (requires { o.range; })
          return check(o.range);
        else if constexpr (requires { o.gfn; })
          return check({o.gfn, 1});
        else if constexpr (requires { o.slot; })
          return std::string();
        else
          return o.count == 0 ? "inject count must be at least 1" : "";  // validity of the pair: the op's own rule
      },
      op);
}

CaseFile parse_case(const std::string& text, const std::string& origin) {
  json doc;
  // A case file is 4 levels deep; refusing deep nesting while parsing keeps every later walk
  // (and its error message) bounded.
  const json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) throw CaseError(origin + ": nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    return true;
  };
  try {
    doc = json::parse(text, depth_guard);
  } catch (const json::exception& e) {
    throw CaseError(origin + ": not valid JSON: " + std::string(e.what()).substr(0, 200));
  }
  Field root{doc, "", origin};
  if (!doc.is_object()) root.fail("expected a JSON object at the top level");
  CaseFile c;
  c.format = static_cast<int>(root.at("format").u64());
  if (c.format != kCaseFormat)
    root.at("format").fail("unsupported case format " + std::to_string(c.format) + " (this tdxhp reads " +
                           std::to_string(kCaseFormat) + ")");
  if (root.has("id")) c.id = root.at("id").str();
  if (root.has("description")) c.description = root.at("description").str();
  c.scenario.config = config_of(root.at("config"));
  Field ops = root.at("ops");
  if (ops.array().size() > kMaxOps)
    ops.fail("at most " + std::to_string(kMaxOps) + " ops, got " + std::to_string(ops.array().size()));
  for (size_t i = 0; i < ops.array().size(); ++i) c.scenario.ops.push_back(op_of(ops.index(i)));
  // Config and each op were checked as they were parsed; what is left needs both.
  if (std::string err = validate_prefaults(c.scenario.config, c.scenario.ops); !err.empty())
    throw CaseError(origin + ": " + err);
  if (root.has("seed")) c.seed = root.at("seed").u64();
  if (root.has("reproduce")) c.reproduce = root.at("reproduce").str();
  if (root.has("target")) c.target = root.at("target").str();
  if (root.has("mutants")) c.mutants = strings_of(root.at("mutants"));
  if (root.has("property")) c.property = root.at("property").str();
  if (root.has("scenarios")) c.scenarios = strings_of(root.at("scenarios"));
  if (root.has("violation")) {
    Field v = root.at("violation");
    Violation out;
    out.invariant = v.at("invariant").str();
    const json& st = v.at("step").j;
    out.step = st.is_number_integer() ? st.get<int64_t>() : static_cast<int64_t>(v.at("step").u64());
    if (v.has("gfn")) out.range = range_of(v);
    if (v.has("expected")) out.expected = v.at("expected").str();
    if (v.has("seen")) out.seen = v.at("seen").str();
    c.violation = out;
  }
  if (root.has("catches")) {
    Field k = root.at("catches");
    c.catches = CaseFile::Catches{k.at("mutant").str(), strings_of(k.at("invariants"))};
  }
  return c;
}

CaseFile load_case(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw CaseError(path + ": is a directory, not a case file");
  // A case file is a few KB; a huge file is not one (and would be read whole).
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxCaseBytes)
    throw CaseError(path + ": " + std::to_string(size) + " bytes; a case file is at most " +
                    std::to_string(kMaxCaseBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CaseError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_case(ss.str(), path);
}

std::string dump_case(const CaseFile& c) {
  json ops = json::array();
  for (auto& op : c.scenario.ops) ops.push_back(op_json(op));
  json j = {{"format", c.format}, {"id", c.id}, {"config", config_json(c.scenario.config)}, {"ops", ops}};
  if (!c.description.empty()) j["description"] = c.description;
  if (c.seed) j["seed"] = *c.seed;
  if (!c.reproduce.empty()) j["reproduce"] = c.reproduce;
  j["target"] = c.target;
  if (!c.mutants.empty()) j["mutants"] = c.mutants;
  if (!c.property.empty()) j["property"] = c.property;
  if (!c.scenarios.empty()) j["scenarios"] = c.scenarios;
  if (c.violation) {
    json v = range_json(c.violation->range);
    v["invariant"] = c.violation->invariant;
    v["step"] = c.violation->step;
    v["expected"] = c.violation->expected;
    v["seen"] = c.violation->seen;
    j["violation"] = v;
  }
  if (c.catches) j["catches"] = {{"mutant", c.catches->mutant}, {"invariants", c.catches->invariants}};
  return j.dump(2) + "\n";
}

std::string fixture_for_mutant(const std::string& dir, std::string_view id) {
  const std::string own = dir + "/" + std::string(id) + ".json";
  std::error_code ec;
  if (std::filesystem::exists(own, ec)) return own;
  std::vector<std::string> paths;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());  // one answer whatever the directory order
  for (const std::string& p : paths) {
    try {
      if (CaseFile c = load_case(p); c.catches && c.catches->mutant == id) return p;
    } catch (const CaseError&) {
    }
  }
  return "";
}

namespace {
// All of text at offset 0; false with errno set on failure.
bool write_all(int fd, const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::pwrite(fd, text.data() + off, text.size() - off, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}
}  // namespace

void save_case(const std::string& path, const CaseFile& c) {
  const std::string text = dump_case(c);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw CaseError(tmp + ": cannot create: " + std::strerror(errno));
  if (!write_all(fd, text)) {
    const int e = errno;
    ::close(fd);
    throw CaseError(tmp + ": write failed: " + std::strerror(e));
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw CaseError(path + ": rename failed: " + std::strerror(errno));
}

PendingCaseFile::~PendingCaseFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PendingCaseFile::save(const CaseFile& c) {
  std::string text = dump_case(c);
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw CaseError(path_ + ": cannot create: " + std::strerror(errno));
    size_ = 0;
  }
  if (text.size() < size_) text.insert(text.size() - 1, size_ - text.size(), ' ');  // keep the final newline
  if (!write_all(fd_, text)) throw CaseError(path_ + ": write failed: " + std::strerror(errno));
  size_ = text.size();
  ::fdatasync(fd_);
}

void PendingCaseFile::remove() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  std::filesystem::remove(path_);
}

}  // namespace tdxhp
