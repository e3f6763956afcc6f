// Scenario configs: memslots at every alignment class, backing kind,
// attribute mode, build pages, module knobs. Every generated config passes validate_config.
#pragma once

#include "domain/types.h"
#include "generators/choices.h"
#include "generators/profile.h"

namespace tdxhp::gen {

Memslot draw_memslot(Choices& ch, Gfn min_base, uint32_t id, BackingKind backing);
Config draw_config(Choices& ch, const GenProfile& profile);

}  // namespace tdxhp::gen
