#include "hyperad/autodiff/tolerance.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad {

void Tolerance::validate(std::string_view who) const {
  if (!(rtol >= 0.0) || !(atol >= 0.0) || !std::isfinite(rtol) || !std::isfinite(atol))
    throw ValueError(fmt::format("{}: tolerances must be finite and >= 0 (rtol {}, atol {})", who, rtol, atol));
}

}  // namespace hyperad
