// Binomial checkpointing arithmetic; see revolve.hpp.
#include "revolve.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hyperad/autodiff/checkpoint.hpp"
#include "hyperad/autodiff/errors.hpp"

namespace hyperad {
namespace detail {

namespace {
// b · num / den for b = β(s, i − 1), num = s + i, den = i: exact while unsaturated, since
// C(s + i, i) = C(s + i − 1, i − 1) · (s + i) / i.
std::int64_t next_beta(std::int64_t b, std::int64_t num, std::int64_t den) {
  if (b >= kRevolveCap) return kRevolveCap;
  __int128 v = static_cast<__int128>(b) * num / den;
  return v >= kRevolveCap ? kRevolveCap : static_cast<std::int64_t>(v);
}
}  // namespace

std::int64_t revolve_beta(std::int64_t s, std::int64_t t) {
  if (t < 0) return 0;
  std::int64_t b = 1;
  for (std::int64_t i = 1; i <= t && b < kRevolveCap; ++i) b = next_beta(b, s + i, i);
  return b;
}

std::int64_t revolve_repetitions(std::int64_t l, std::int64_t s) {
  std::int64_t t = 0, b = 1;  // b = β(s, t)
  while (b < l) {
    ++t;
    b = next_beta(b, s + t, t);
  }
  return t;
}

std::int64_t revolve_cost(std::int64_t l, std::int64_t s) {
  const std::int64_t t = revolve_repetitions(l, s);
  __int128 p = static_cast<__int128>(t) * l - revolve_beta(s + 1, t - 1);
  return p >= kRevolveCap ? kRevolveCap : static_cast<std::int64_t>(p);
}

std::int64_t revolve_split(std::int64_t l, std::int64_t s) {
  const std::int64_t t = revolve_repetitions(l, s);
  const std::int64_t lo = std::max({revolve_beta(s, t - 2), l - revolve_beta(s - 1, t), std::int64_t{1}});
  const std::int64_t hi = std::min({revolve_beta(s, t - 1), l - revolve_beta(s - 1, t - 1), l - 1});
  if (lo > hi)  // cannot happen for l >= 2, s >= 2 (Pascal's rule); guard the invariant anyway
    throw Error(fmt::format("revolve: no optimal split for {} steps and {} snapshots ({} > {})", l, s, lo, hi));
  return hi;
}

}  // namespace detail

std::int64_t binomial_checkpoint_cost(std::int64_t n_steps, std::int64_t snapshots) {
  if (n_steps < 1 || snapshots < 1)
    throw ValueError(fmt::format("binomial_checkpoint_cost: need n_steps >= 1 and snapshots >= 1, got {} and {}",
                                 n_steps, snapshots));
  return detail::revolve_cost(n_steps, snapshots);
}

}  // namespace hyperad
