#pragma once
/// \file names.hpp
/// One table of names per enum, shared by its printer and its parsers (the CLI, the method
/// registry, state files), so a value is spelled the same way everywhere:
///
///     inline constexpr std::array<Named<WarmStart>, 3> kWarmStartNames{{
///         {WarmStart::none, "none"}, {WarmStart::inner, "inner"}, ...}};
///     name_of(kWarmStartNames, WarmStart::inner)            // "inner"
///     parse_name(kWarmStartNames, "inner", "--warm-start")   // WarmStart::inner
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad {

template <class E>
struct Named {
  E value;
  const char* name;
};

/// The name of `value` ("?" when the table lacks it).
template <class E, std::size_t N>
constexpr const char* name_of(const std::array<Named<E>, N>& table, E value) {
  for (const Named<E>& n : table)
    if (n.value == value) return n.name;
  return "?";
}

/// "a, b or c": the table's names, for messages.
template <class E, std::size_t N>
std::string name_list(const std::array<Named<E>, N>& table) {
  std::string s;
  for (std::size_t i = 0; i < N; ++i) s += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + table[i].name;
  return s;
}

/// The table's names in order (e.g. for a command-line parser's list of choices).
template <class E, std::size_t N>
std::vector<std::string> names_of(const std::array<Named<E>, N>& table) {
  std::vector<std::string> names;
  for (const Named<E>& n : table) names.emplace_back(n.name);
  return names;
}

/// The value called `text`; ValueError "<what> '<text>': expected a, b or c" otherwise.
template <class E, std::size_t N>
E parse_name(const std::array<Named<E>, N>& table, std::string_view text, std::string_view what) {
  for (const Named<E>& n : table)
    if (text == n.name) return n.value;
  throw ValueError(fmt::format("{} '{}': expected {}", what, text, name_list(table)));
}

}  // namespace hyperad
