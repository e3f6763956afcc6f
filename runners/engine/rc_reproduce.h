// RapidCheck builds these into librapidcheck but does not install their declarations; they
// turn a failure's Reproduce into the string RC_PARAMS="reproduce=..." accepts.
#pragma once

#include <rapidcheck.h>

#include <string>
#include <unordered_map>

namespace rc::detail {
std::string reproduceMapToString(const std::unordered_map<std::string, Reproduce>& reproduceMap);
std::unordered_map<std::string, Reproduce> stringToReproduceMap(const std::string& str);
}  // namespace rc::detail
