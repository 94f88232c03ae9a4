// The convolutional feature map of meta_hyperrep (CnnMap, meta_tasks.hpp).
#include <cmath>

#include "hyperad/autodiff/ops/batch_norm.hpp"
#include "hyperad/autodiff/ops/conv.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/pool.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

TensorList CnnMap::lambda0(Generator& gen) const {
  TensorList lam;
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t in = b == 0 ? 1 : channels;
    lam.push_back(randn({channels, in, 3, 3}, gen) * std::sqrt(2.0 / double(in * 9)));
    lam.push_back(ones({channels}));
    lam.push_back(zeros({channels}));
  }
  return lam;
}

Tensor CnnMap::features(const Tensor& x, const TensorList& lam) const {
  const std::int64_t T = x.size(0), n = x.size(1);
  Tensor h = reshape(x, {T * n, 1, side, side});
  for (std::int64_t b = 0; b < blocks; ++b) {
    const auto k = static_cast<std::size_t>(3 * b);
    h = conv2d(h, lam[k], {}, {.padding = {1, 1}});
    // Each task's statistics: the tasks of a meta-batch stay independent.
    h = batch_norm(h, lam[k + 1], lam[k + 2], nullptr, {.batch_groups = T});
    h = max_pool2d(relu(h), {2, 2});
  }
  h = global_avg_pool2d(h);
  h = h / sqrt(add_scalar(sum(square(h), {1}, true), 1e-12));
  return reshape(h, {T, n, channels});
}

std::int64_t CnnMap::halvings(std::int64_t side) {
  std::int64_t k = 0;
  for (; side >= 2; side /= 2) ++k;
  return k;
}

}  // namespace hyperad::problems::meta
