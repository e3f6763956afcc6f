#include "generators/choices.h"

namespace tdxhp::gen {

uint64_t Choices::next_random() {  // splitmix64: one add and three multiply-xorshifts
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Choices::take(uint64_t n, uint64_t fresh) {
  uint64_t v = fresh;
  if (replay_) {
    const size_t i = record_.size();
    v = i < replay_->size() ? (*replay_)[i] % n : 0;
  }
  record_.push_back(v);
  return v;
}

uint64_t Choices::uniform(uint64_t n) {
  // Lemire's multiply-shift: the high half of the 128-bit product; its bias is n / 2^64.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next_random()) * n) >> 64);
}

uint64_t Choices::below(uint64_t n) {
  if (n <= 1) return 0;
  return take(n, replay_ ? 0 : uniform(n));
}

bool Choices::chance(uint64_t k, uint64_t n) {
  return take(2, replay_ ? 0 : uniform(n) < k) != 0;
}

}  // namespace tdxhp::gen
