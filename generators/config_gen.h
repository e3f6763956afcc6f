// RapidCheck generator for scenario configs: memslots at every alignment class, backing kind,
// attribute mode, build pages, module knobs. Every generated config passes validate_config.
#pragma once

#include <rapidcheck.h>

#include "domain/types.h"
#include "generators/profile.h"

namespace tdxhp::gen {

rc::Gen<Memslot> memslot_after(Gfn min_base, uint32_t id, BackingKind backing);
rc::Gen<Config> config(const GenProfile& profile);

}  // namespace tdxhp::gen
