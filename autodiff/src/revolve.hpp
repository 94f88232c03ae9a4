#pragma once
// Binomial checkpointing arithmetic (Griewank 1992; Griewank & Walther, "Revolve", 2000).
//
// β(s, t) = C(s + t, s) is the longest loop that s snapshots can reverse when no step is
// evaluated more than t times untaped. Reversing l steps from a snapshot at its start with
// s snapshots (that one included) costs at least p(l, s) = t·l − β(s + 1, t − 1) untaped
// step evaluations, t the repetition number with β(s, t − 1) < l ≤ β(s, t). The optimal
// schedule advances j steps, stores a snapshot, reverses the last l − j steps with s − 1
// snapshots, then the first j with s; any j whose two parts stay within repetition t − 1
// (left) and t (right) attains p(l, s), which `revolve_split` picks.
#include <cstdint>

namespace hyperad::detail {

/// C(s + t, s), 0 for t < 0, saturating at kRevolveCap.
std::int64_t revolve_beta(std::int64_t s, std::int64_t t);
/// The smallest t >= 0 with β(s, t) >= l (l >= 1, s >= 1).
std::int64_t revolve_repetitions(std::int64_t l, std::int64_t s);
/// p(l, s) (l >= 1, s >= 1), saturating.
std::int64_t revolve_cost(std::int64_t l, std::int64_t s);
/// An optimal first advance j in [1, l − 1] for l >= 2 steps and s >= 2 snapshots.
std::int64_t revolve_split(std::int64_t l, std::int64_t s);

inline constexpr std::int64_t kRevolveCap = std::int64_t{1} << 62;

}  // namespace hyperad::detail
