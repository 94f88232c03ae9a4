// The reverse sweep (sweep.hpp) and the view of it a backward rule gets (Backward).
#include "sweep.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "kernels/elementwise.hpp"

namespace hyperad {

// ---- Backward -------------------------------------------------------------------------------

const char* Backward::op_name() const { return rec_.op->name; }
int Backward::num_inputs() const { return rec_.n_in; }
int Backward::num_outputs() const { return rec_.n_out; }
const OpAttrs& Backward::attrs() const { return rec_.attrs; }
const Shape& Backward::input_shape(int i) const { return rec_.in_shape(i); }
bool Backward::needs(int i) const { return sweep_.needs(rec_, i); }
bool Backward::create_graph() const { return sweep_.create_graph(); }
void Backward::accumulate(int i, Tensor g) { sweep_.accumulate(rec_, i, std::move(g)); }

Tensor Backward::grad_out_or_zeros(int k) const {
  if (gouts_[k].defined()) return gouts_[k];
  const Shape& s = rec_.n_out > 1 ? rec_.out_shapes[k] : Shape{};
  Dtype d = Dtype::f64;
  for (int j = 0; j < rec_.n_out; ++j)
    if (gouts_[j].defined()) d = gouts_[j].dtype();
  return zeros(s, d);
}

const Tensor& Backward::saved(int k) const {
  const Tensor& t = rec_.saved[k];
  if (t.version() != rec_.saved_version[k])
    throw TapeError(fmt::format("backward of '{}': a tensor of shape {} saved for the backward pass was "
                                "modified in place after it was recorded (version {} then, {} now)",
                                rec_.op->name, t.shape().str(), rec_.saved_version[k], t.version()));
  return t;
}

// ---- the sweep --------------------------------------------------------------------------------

namespace detail {

Sweep::Sweep(Tape& tape, std::uint32_t lo, std::uint32_t hi, bool create_graph, std::vector<std::uint32_t> inputs)
    : tape_(tape), lo_(lo), hi_(hi), create_graph_(create_graph), inputs_(std::move(inputs)), adj_(hi - lo + 1) {}

bool Sweep::kept(std::uint32_t id) const { return std::find(inputs_.begin(), inputs_.end(), id) != inputs_.end(); }

void Sweep::mark_active(std::size_t rec_end) {
  active_.assign(hi_ - lo_ + 1, 0);
  // An input recorded after every output (id above hi) cannot reach them: it stays inactive.
  for (std::uint32_t id : inputs_)
    if (id >= lo_ && id <= hi_) active_[id - lo_] = 1;
  // The first record with an output at or above lo (records are in id order).
  std::size_t a = 0, b = rec_end;
  while (a < b) {
    const std::size_t mid = a + (b - a) / 2;
    const Record& r = TapeEngine::record_at(tape_, mid);
    if (r.out_id + r.n_out <= lo_) a = mid + 1;
    else b = mid;
  }
  for (std::size_t ri = a; ri < rec_end; ++ri) {
    const Record& r = TapeEngine::record_at(tape_, ri);
    bool depends = false;
    for (int i = 0; i < r.n_in && !depends; ++i) depends = active(r.in_id(i));
    if (!depends) continue;
    for (std::uint32_t id = r.out_id; id < r.out_id + r.n_out && id <= hi_; ++id) active_[id - lo_] = 1;
  }
}

void Sweep::add(std::uint32_t id, Tensor g, const char* op, int input, bool in_backward) {
  if (tape_.checking_finite()) {  // the labels are built only here: this runs for every adjoint
    const std::string where = in_backward ? fmt::format("backward of '{}'", op) : std::string(op);
    const std::string what = input < 0 ? "the seed" : fmt::format("the gradient of input {}", input);
    check_finite(g, where.c_str(), what.c_str());
  }
  Tensor& a = adj_[id - lo_];
  if (!a.defined()) {
    a = std::move(g);
  } else if (!create_graph_ && a.use_count() == 1 && !TapeEngine::var(a).tape) {
    kernels::add_inplace(a, g);  // a is the sweep's own buffer: accumulate without allocating
  } else {
    a = hyperad::add(a, g);
  }
}

void Sweep::accumulate(const Record& r, int i, Tensor g) {
  if (!g.defined() || !needs(r, i)) return;
  const Shape& s = r.in_shape(i);
  if (g.shape() != s) {
    if (broadcast_shapes(g.shape(), s, r.op->name) != g.shape())
      throw ShapeError(fmt::format("backward of '{}': gradient of shape {} for input {} of shape {}", r.op->name,
                                   g.shape().str(), i, s.str()));
    g = sum_to(g, s);  // broadcasting is undone once, here, for every op
  }
  add(r.in_id(i), std::move(g), r.op->name, i, true);
}

void Sweep::run(std::size_t rec_end) {
  TensorList gouts;
  for (std::size_t ri = rec_end; ri-- > 0;) {
    const Record& r = TapeEngine::record_at(tape_, ri);
    if (r.out_id + r.n_out <= lo_) break;  // everything below is upstream of every input
    bool any = false;
    gouts.assign(r.n_out, Tensor{});
    for (int k = 0; k < r.n_out; ++k) {
      const std::uint32_t id = r.out_id + k;
      if (!active(id)) continue;  // (a seed on an output that depends on no input leads nowhere)
      Tensor& a = adj_[id - lo_];
      if (!a.defined()) continue;
      any = true;
      gouts[k] = kept(id) ? a : std::move(a);  // free adjoints as soon as they are consumed
    }
    if (!any) continue;  // no adjoint reaches this record
    Backward b(r, gouts.data(), *this);
    const char* outer = TapeEngine::backward_of(tape_);
    TapeEngine::set_backward_of(tape_, r.op->name);
    try {
      r.op->backward(b);
    } catch (...) {
      TapeEngine::set_backward_of(tape_, outer);
      throw;
    }
    TapeEngine::set_backward_of(tape_, outer);
  }
}

}  // namespace detail
}  // namespace hyperad
