#pragma once
// Internal to the poisoning problem (poisoning*.cpp): its data.
#include <cstdint>
#include <filesystem>
#include <string>

#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::detail {

struct PoisoningSizes {
  std::int64_t train = 0, val = 0, test = 0;
  std::int64_t downsample = 1;  // k: k×k pixel blocks averaged into one
};

struct PoisoningData {
  Dataset train, val, test;  // pixels in [0, 1]
};

/// `dataset` is "fashion_mnist" or "digits". DataError (how to install it) when
/// Fashion-MNIST is missing; ValueError when the sizes exceed the data or `downsample`
/// does not divide the image side.
PoisoningData load_poisoning_data(const std::string& dataset, const PoisoningSizes& sizes,
                                  const std::filesystem::path& data_dir, std::uint64_t seed);

}  // namespace hyperad::problems::detail
