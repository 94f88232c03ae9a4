#pragma once
// The reverse sweep over a tape segment: adjoints of variables [lo, hi], filled from the
// outputs' seeds by walking the records backwards. Only records that depend on one of the
// requested inputs are visited (a forward activity pass marks them first), so a gradient
// with respect to some of a function's inputs does none of the others' work.
#include <vector>

#include "tape_engine.hpp"

namespace hyperad::detail {

class Sweep {
 public:
  /// `inputs`: the ids whose adjoints are wanted (they survive their record); variables
  /// below the smallest of them are constants for this sweep.
  Sweep(Tape& tape, std::uint32_t lo, std::uint32_t hi, bool create_graph, std::vector<std::uint32_t> inputs);

  /// Marks the variables of records [.., rec_end) that depend on an input (call before run).
  void mark_active(std::size_t rec_end);
  /// Adds `g` into variable id's adjoint (g must have the variable's shape). `op` names the
  /// source for the finite check: a caller, or (in_backward) the op whose backward made g.
  void add(std::uint32_t id, Tensor g, const char* op, int input, bool in_backward = false);
  /// Walks records [0, rec_end) backwards, stopping below lo.
  void run(std::size_t rec_end);
  /// The adjoint of `id` (undefined when nothing reached it).
  const Tensor& adjoint(std::uint32_t id) const { return id >= lo_ && id <= hi_ ? adj_[id - lo_] : none_; }

  bool needs(const Record& r, int i) const { return active(r.in_id(i)); }
  bool create_graph() const { return create_graph_; }
  void accumulate(const Record& r, int i, Tensor g);

 private:
  bool active(std::uint32_t id) const { return id != kNoVar && id >= lo_ && id <= hi_ && active_[id - lo_]; }
  bool kept(std::uint32_t id) const;

  Tape& tape_;
  std::uint32_t lo_, hi_;
  bool create_graph_;
  std::vector<std::uint32_t> inputs_;
  TensorList adj_;
  std::vector<char> active_;  // depends on an input, per variable of [lo, hi]
  Tensor none_;
};

}  // namespace hyperad::detail
