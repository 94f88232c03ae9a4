// Uses the installed hyperad: the gradient of sum(x * x) must be 2x. Exit status 0 iff so.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <vector>

#include "hyperad/hyperad.hpp"

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
  return 0;
}
