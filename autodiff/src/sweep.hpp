#pragma once
// The reverse sweep over a tape segment: adjoints of variables [lo, hi], filled from the
// outputs' seeds by walking the records backwards.
#include <vector>

#include "hyperad/autodiff/record.hpp"

namespace hyperad::detail {

class Sweep {
 public:
  Sweep(Tape& tape, std::uint32_t lo, std::uint32_t hi, bool create_graph, std::vector<std::uint32_t> keep)
      : tape_(tape), lo_(lo), hi_(hi), create_graph_(create_graph), keep_(std::move(keep)),
        adj_(hi - lo + 1) {}

  /// Adds `g` into variable id's adjoint (g must have the variable's shape).
  void add(std::uint32_t id, Tensor g, const char* op, int input);
  /// Walks records [0, rec_end) backwards, stopping below lo.
  void run(std::size_t rec_end);
  /// The adjoint of `id` (undefined when nothing reached it).
  const Tensor& adjoint(std::uint32_t id) const { return id >= lo_ && id <= hi_ ? adj_[id - lo_] : none_; }

  bool needs(const Record& r, int i) const {
    std::uint32_t id = r.in_id(i);
    return id != kNoVar && id >= lo_;
  }
  bool create_graph() const { return create_graph_; }
  void accumulate(const Record& r, int i, Tensor g);

 private:
  bool kept(std::uint32_t id) const;

  Tape& tape_;
  std::uint32_t lo_, hi_;
  bool create_graph_;
  std::vector<std::uint32_t> keep_;  // requested ids whose adjoints must survive their record
  std::vector<Tensor> adj_;
  Tensor none_;
};

}  // namespace hyperad::detail
