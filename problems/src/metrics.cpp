#include "metrics.hpp"

#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::problems::detail {

double multiclass_accuracy(const Tensor& logits, const std::vector<std::int64_t>& labels) {
  NoGradGuard off;
  const std::vector<std::int64_t> pred = argmax(logits, 1);
  std::int64_t right = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) right += pred[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(pred.size());
}

double binary_accuracy(const Tensor& scores, const Tensor& signs) {
  const std::vector<double> s = scores.to_vector(), y = signs.to_vector();
  std::int64_t right = 0;
  for (std::size_t i = 0; i < s.size(); ++i) right += (s[i] > 0.0) == (y[i] > 0.0);
  return static_cast<double>(right) / static_cast<double>(s.size());
}

}  // namespace hyperad::problems::detail
