// Uses the installed hyperad: the gradient of sum(x * x) must be 2x, and the bundled
// datasets must be found in the installed package (not in the source tree the library was
// built from). Exit status 0 iff so.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <vector>

#include "hyperad/hyperad.hpp"
#include "hyperad/problems/data.hpp"

int main() {
  hyperad::Tensor x = hyperad::tensor({1.0, 2.0, 3.0});
  x.requires_grad_();
  const hyperad::Tensor y = hyperad::sum(x * x);
  const std::vector<hyperad::Tensor> grads = hyperad::grad(y, {x});

  const std::vector<double> g = grads.at(0).to_vector();
  const std::vector<double> expected = {2.0, 4.0, 6.0};
  if (g.size() != expected.size()) {
    std::fprintf(stderr, "consumer: gradient has %zu elements, expected %zu\n", g.size(), expected.size());
    return 1;
  }
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::abs(g[i] - expected[i]) > 1e-12) {
      std::fprintf(stderr, "consumer: d/dx_%zu sum(x*x) = %g, expected %g\n", i, g[i], expected[i]);
      return 1;
    }
  }
  std::printf("consumer: gradient of sum(x*x) at (1, 2, 3) = (2, 4, 6) as expected\n");

  try {
    const std::filesystem::path dir = hyperad::problems::data_dir();
    if (dir != std::filesystem::path(EXPECTED_DATA_DIR)) {
      std::fprintf(stderr, "consumer: data_dir() = %s, expected the installed %s\n", dir.c_str(), EXPECTED_DATA_DIR);
      return 1;
    }
    const hyperad::problems::Dataset wine = hyperad::problems::load_builtin("wine");
    if (wine.size() != 178) {
      std::fprintf(stderr, "consumer: wine has %lld rows, expected 178\n", static_cast<long long>(wine.size()));
      return 1;
    }
    std::printf("consumer: the bundled wine data (178 rows) loads from the installed %s\n", dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
