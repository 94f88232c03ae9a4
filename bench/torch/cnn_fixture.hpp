#pragma once
// The thesis's meta-learning network written twice, in hyperad and in libtorch, for the
// benchmarks that compare the two: blocks of 3×3 convolution (32 channels, padding 1, no
// bias), batch normalization in training mode (each of `groups` consecutive parts of the
// batch with its own statistics: the tasks of a meta-batch), ReLU and 2×2 max-pooling.
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "hyperad/hyperad.hpp"

namespace hyperad::bench {

inline constexpr int kCnnBlocks = 4;
inline constexpr std::int64_t kCnnChannels = 32;

/// θ: per block the conv weight (He), γ = 1, β = 0.
inline TensorList cnn_params(std::int64_t in_channels, Generator& gen, Dtype dtype) {
  TensorList p;
  for (int b = 0; b < kCnnBlocks; ++b) {
    const std::int64_t in = b == 0 ? in_channels : kCnnChannels;
    p.push_back((randn({kCnnChannels, in, 3, 3}, gen) * std::sqrt(2.0 / double(in * 9))).to(dtype));
    p.push_back(ones({kCnnChannels}, dtype));
    p.push_back(zeros({kCnnChannels}, dtype));
  }
  return p;
}

/// x [N, C, H, W] → the last block's output [N, 32, H/16, W/16] (floors).
inline Tensor cnn_forward(const Tensor& x, const TensorList& p, std::int64_t groups = 1) {
  Tensor h = x;
  for (int b = 0; b < kCnnBlocks; ++b) {
    h = conv2d(h, p[3 * b], {}, {.padding = {1, 1}});
    h = batch_norm(h, p[3 * b + 1], p[3 * b + 2], nullptr, {.batch_groups = groups});
    h = max_pool2d(relu(h), {2, 2});
  }
  return h;
}

inline torch::Tensor to_torch(const Tensor& t, torch::Dtype dtype) {
  std::vector<double> v = t.to_vector();
  std::vector<std::int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.size(i));
  return torch::from_blob(v.data(), shape, torch::TensorOptions().dtype(torch::kFloat64)).to(dtype).clone();
}

inline std::vector<double> from_torch(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous().to(torch::kFloat64);
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// The same network in libtorch (batch norm per group written out when groups > 1).
inline torch::Tensor cnn_forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p, std::int64_t groups = 1) {
  torch::Tensor h = x;
  for (int b = 0; b < kCnnBlocks; ++b) {
    h = torch::conv2d(h, p[3 * b], {}, 1, 1);
    if (groups == 1) {
      h = torch::batch_norm(h, p[3 * b + 1], p[3 * b + 2], {}, {}, /*training=*/true, 0.1, 1e-5, false);
    } else {
      const auto s = h.sizes();
      torch::Tensor g = h.reshape({groups, s[0] / groups, s[1], s[2], s[3]});
      const torch::Tensor mu = g.mean({1, 3, 4}, true);
      const torch::Tensor var = (g - mu).square().mean({1, 3, 4}, true);
      h = ((g - mu) / (var + 1e-5).sqrt()).reshape(s) * p[3 * b + 1].reshape({1, -1, 1, 1}) +
          p[3 * b + 2].reshape({1, -1, 1, 1});
    }
    h = torch::max_pool2d(torch::relu(h), 2);
  }
  return h;
}

}  // namespace hyperad::bench
