// checkpointed_loop: one tape record whose backward replays and reverses the loop from
// stored states (store_all, every_k, or the binomial "revolve" schedule).
#include "hyperad/autodiff/checkpoint.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/record.hpp"
#include "revolve.hpp"

namespace hyperad {

std::string CheckpointPolicy::str() const {
  switch (kind) {
    case Kind::store_all: return "store_all";
    case Kind::every_k: return fmt::format("every_k({})", value);
    case Kind::binomial: return fmt::format("binomial({})", value);
  }
  return "?";
}

namespace {

using Stored = std::vector<std::pair<std::int64_t, TensorList>>;  // (position i, w_i), ascending

// What the backward needs; `stored` is handed over to the first backward, which releases
// it state by state (later backward passes rebuild it).
struct LoopState {
  Stored stored;
  bool intact = true;
};

struct Payload {
  StepFn step;
  CheckpointPolicy policy;
  std::int64_t n = 0;
  TensorList w0, params;  // detached
  std::vector<std::uint64_t> w0_version, p_version;
  std::size_t state_bytes = 0;
  std::shared_ptr<LoopState> state;
  std::shared_ptr<CheckpointReport> report;
};

void check_like_state(const TensorList& out, const TensorList& w0, std::int64_t i) {
  if (out.size() != w0.size())
    throw ShapeError(fmt::format("checkpointed_loop: the step returned {} tensors for a state of {} tensors (step {})",
                                 out.size(), w0.size(), i));
  for (std::size_t k = 0; k < w0.size(); ++k) {
    if (!out[k].defined())
      throw ValueError(
          fmt::format("checkpointed_loop: the step returned an undefined tensor for state tensor {} (step {})", k, i));
    if (out[k].shape() != w0[k].shape() || out[k].dtype() != w0[k].dtype())
      throw ShapeError(fmt::format("checkpointed_loop: the step returned {} {} for state tensor {} of {} {} (step {})",
                                   dtype_name(out[k].dtype()), out[k].shape().str(), k, dtype_name(w0[k].dtype()),
                                   w0[k].shape().str(), i));
  }
}

// The first descent of the binomial schedule: snapshot positions c_0 = 0 < c_1 < ... < c_m,
// level k holding s − k snapshots.
std::vector<std::int64_t> first_descent(std::int64_t n, std::int64_t s) {
  std::vector<std::int64_t> c{0};
  std::int64_t lo = 0;
  for (std::int64_t sk = s; n - lo >= 2 && sk >= 2; --sk) {
    lo += detail::revolve_split(n - lo, sk);
    c.push_back(lo);
  }
  return c;
}

// Positions the forward pass stores (ascending, always ending with n − 1).
std::vector<std::int64_t> forward_positions(const CheckpointPolicy& p, std::int64_t n) {
  std::vector<std::int64_t> pos;
  if (p.kind == CheckpointPolicy::Kind::binomial) {
    pos = first_descent(n, p.value);
    if (pos.back() != n - 1) pos.push_back(n - 1);
    return pos;
  }
  const std::int64_t k = p.kind == CheckpointPolicy::Kind::store_all ? 1 : p.value;
  const std::int64_t last = (n - 1) / k * k;  // start of the last segment, kept whole
  for (std::int64_t i = 0; i < last; i += k) pos.push_back(i);
  for (std::int64_t i = last; i < n; ++i) pos.push_back(i);
  return pos;
}

// Runs steps [0, upto) from w0 without recording, storing w_i for i in `pos` (i <= upto).
TensorList run_forward(const StepFn& step, const TensorList& w0, const TensorList& params, std::int64_t upto,
                       const std::vector<std::int64_t>& pos, Stored& out) {
  NoGradGuard off;
  TensorList w = w0;
  std::size_t next = 0;
  for (std::int64_t i = 0;; ++i) {
    if (next < pos.size() && pos[next] == i) {
      out.emplace_back(i, w);
      ++next;
    }
    if (i == upto) break;
    TensorList nw = step(w, params);
    check_like_state(nw, w0, i);
    w = std::move(nw);
  }
  return w;
}

void check_version(const TensorList& xs, const std::vector<std::uint64_t>& was, const char* what) {
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (xs[i].version() != was[i])
      throw TapeError(fmt::format("backward of 'checkpointed_loop': {} {} (shape {}) was modified in place after the "
                                  "forward pass (version {} then, {} now)",
                                  what, i, xs[i].shape().str(), was[i], xs[i].version()));
}

// The reverse walk: holds the cotangent of the current state and the parameter sums.
class Reverser {
 public:
  Reverser(const Payload& P, bool need_params, TensorList ubar, Stored stored)
      : P_(P), need_p_(need_params), ubar_(std::move(ubar)), stored_(std::move(stored)) {
    held_ = static_cast<std::int64_t>(stored_.size());
    peak_ = held_;
    if (need_p_) pacc_ = list::zeros_like(P_.params);
  }

  void run() {
    if (P_.policy.kind == CheckpointPolicy::Kind::binomial)
      run_binomial();
    else
      run_segments(P_.policy.kind == CheckpointPolicy::Kind::store_all ? 1 : P_.policy.value);
  }

  const TensorList& state_grad() const { return ubar_; }
  const TensorList& param_grad() const { return pacc_; }
  std::int64_t recomputed = 0, taped = 0;
  std::int64_t peak() const { return peak_; }

 private:
  // w_to from w_from (from <= to), untaped.
  TensorList advance(TensorList w, std::int64_t from, std::int64_t to) {
    NoGradGuard off;
    for (std::int64_t i = from; i < to; ++i) {
      w = P_.step(w, P_.params);
      ++recomputed;
    }
    return w;
  }

  // Records step i alone at w_i and pulls the cotangent of w_{i+1} back through it.
  void tape(std::int64_t i, const TensorList& wi) {
    TapeScope scope;
    const std::size_t n = wi.size();
    TensorList in = wi;
    if (need_p_) in.insert(in.end(), P_.params.begin(), P_.params.end());
    Vjp v = vjp(
        [&](const TensorList& xs) {
          TensorList w(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n));
          if (!need_p_) return P_.step(w, P_.params);
          return P_.step(w, TensorList(xs.begin() + static_cast<std::ptrdiff_t>(n), xs.end()));
        },
        in);
    check_like_state(v.value, wi, i);
    TensorList g = v.pullback(ubar_);
    ubar_.assign(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(n));
    if (need_p_) list::axpy(1.0, TensorList(g.begin() + static_cast<std::ptrdiff_t>(n), g.end()), pacc_);
    ++taped;
  }

  void hold(std::int64_t k) {
    held_ += k;
    peak_ = std::max(peak_, held_);
  }

  TensorList pop(std::int64_t expect) {
    if (stored_.empty() || stored_.back().first != expect)
      throw Error(fmt::format("checkpointed_loop: internal schedule error (state {} not stored)", expect));
    TensorList w = std::move(stored_.back().second);
    stored_.pop_back();
    --held_;
    return w;
  }

  // Segments [c, c + k) from last to first; the last one was stored whole by the forward
  // pass, the others are recomputed from w_c into a buffer.
  void run_segments(std::int64_t k) {
    const std::int64_t n = P_.n;
    for (std::int64_t c = (n - 1) / k * k; c >= 0; c -= k) {
      const std::int64_t e = std::min(c + k, n);
      std::vector<TensorList> buf(static_cast<std::size_t>(e - c));
      const bool whole = stored_.back().first == e - 1;
      if (whole) {
        for (std::int64_t i = e - 1; i >= c; --i) buf[static_cast<std::size_t>(i - c)] = pop(i);
        hold(e - c);
      } else {
        buf[0] = pop(c);
        hold(1);
        for (std::int64_t i = c + 1; i < e; ++i) {
          buf[static_cast<std::size_t>(i - c)] = advance(buf[static_cast<std::size_t>(i - c - 1)], i - 1, i);
          hold(1);
        }
      }
      for (std::int64_t i = e - 1; i >= c; --i) {
        tape(i, buf[static_cast<std::size_t>(i - c)]);
        buf[static_cast<std::size_t>(i - c)].clear();
        --held_;
      }
    }
  }

  void run_binomial() {
    const std::int64_t n = P_.n, s = P_.policy.value;
    const std::vector<std::int64_t> c = first_descent(n, s);
    const std::int64_t m = static_cast<std::int64_t>(c.size()) - 1;
    // Innermost level [c_m, n): the last step from the stored w_{n−1} (revolve's working
    // state), then the rest with the one snapshot left (s − m == 1 when c_m < n − 1).
    if (c.back() == n - 1) {
      TensorList w = pop(n - 1);
      ++held_;
      tape(n - 1, w);
      --held_;
    } else {
      tape(n - 1, pop(n - 1));
      TensorList wc = pop(c.back());
      ++held_;
      reverse(c.back(), n - 1, s - m, wc);
      --held_;
    }
    for (std::int64_t k = m - 1; k >= 0; --k) {
      TensorList wc = pop(c[static_cast<std::size_t>(k)]);
      ++held_;
      reverse(c[static_cast<std::size_t>(k)], c[static_cast<std::size_t>(k) + 1], s - k, wc);
      --held_;
    }
  }

  // Reverses steps [lo, hi) given w_lo, with `s` snapshots (w_lo's included).
  void reverse(std::int64_t lo, std::int64_t hi, std::int64_t s, const TensorList& w_lo) {
    while (hi > lo) {
      const std::int64_t l = hi - lo;
      if (l == 1) {
        tape(lo, w_lo);
        return;
      }
      if (s == 1) {
        for (std::int64_t i = hi - 1; i >= lo; --i) tape(i, advance(w_lo, lo, i));
        return;
      }
      const std::int64_t mid = lo + detail::revolve_split(l, s);
      TensorList w_mid = advance(w_lo, lo, mid);
      hold(1);
      reverse(mid, hi, s - 1, w_mid);
      --held_;
      hi = mid;
    }
  }

  const Payload& P_;
  bool need_p_;
  TensorList ubar_, pacc_;
  Stored stored_;
  std::int64_t held_ = 0, peak_ = 0;
};

void backward(Backward& b) {
  if (b.create_graph())
    throw TapeError("checkpointed_loop: second-order differentiation through checkpointed_loop is not supported: its "
                    "backward pass replays the loop outside the recorded graph, so it cannot run with create_graph "
                    "(grad with create_graph, hvp, second-order checks)");
  const Payload& P = b.payload<Payload>();
  check_version(P.w0, P.w0_version, "initial state tensor");
  check_version(P.params, P.p_version, "parameter");
  const std::size_t nw = P.w0.size();
  bool need_w = false, need_p = false;
  for (std::size_t i = 0; i < nw; ++i) need_w = need_w || b.needs(static_cast<int>(i));
  for (std::size_t j = 0; j < P.params.size(); ++j) need_p = need_p || b.needs(static_cast<int>(nw + j));
  if (!need_w && !need_p) return;

  CheckpointReport& rep = *P.report;
  ++rep.backward_calls;
  Stored stored;
  std::int64_t rebuilt = 0;
  if (P.state->intact) {
    stored = std::move(P.state->stored);
  } else {  // a previous backward released the states: replay the forward pass
    run_forward(P.step, P.w0, P.params, P.n - 1, forward_positions(P.policy, P.n), stored);
    rebuilt = P.n - 1;
  }
  P.state->stored.clear();
  P.state->intact = false;

  TensorList ubar;
  for (std::size_t k = 0; k < nw; ++k) {
    const Tensor& g = b.grad_out(static_cast<int>(k));
    ubar.push_back(g.defined() ? g.detach() : zeros_like(P.w0[k]));
  }
  Reverser r(P, need_p, std::move(ubar), std::move(stored));
  r.run();
  rep.recomputed_steps = r.recomputed + rebuilt;
  rep.taped_steps = r.taped;
  rep.peak_stored_states = std::max(rep.peak_stored_states, r.peak());
  rep.peak_stored_bytes = static_cast<std::size_t>(rep.peak_stored_states) * P.state_bytes;
  for (std::size_t i = 0; i < nw; ++i) b.accumulate(static_cast<int>(i), r.state_grad()[i]);
  if (need_p)
    for (std::size_t j = 0; j < P.params.size(); ++j) b.accumulate(static_cast<int>(nw + j), r.param_grad()[j]);
}

const OpDef kLoopDef{"checkpointed_loop", backward};

}  // namespace

TensorList checkpointed_loop(const StepFn& step, const TensorList& w0, const TensorList& params, std::int64_t n_steps,
                             const CheckpointPolicy& policy, CheckpointStats* stats) {
  if (!step) throw ValueError("checkpointed_loop: the step function is empty");
  if (w0.empty()) throw ValueError("checkpointed_loop: the initial state has no tensors");
  for (std::size_t i = 0; i < w0.size(); ++i)
    if (!w0[i].defined()) throw ValueError(fmt::format("checkpointed_loop: initial state tensor {} is undefined", i));
  for (std::size_t j = 0; j < params.size(); ++j)
    if (!params[j].defined()) throw ValueError(fmt::format("checkpointed_loop: parameter {} is undefined", j));
  if (n_steps < 0) throw ValueError(fmt::format("checkpointed_loop: n_steps must be >= 0, got {}", n_steps));
  if (policy.kind != CheckpointPolicy::Kind::store_all && policy.value < 1)
    throw ValueError(fmt::format("checkpointed_loop: policy {} needs a {} >= 1", policy.str(),
                                 policy.kind == CheckpointPolicy::Kind::every_k ? "segment length k"
                                                                                : "number of snapshots"));

  auto rep = std::make_shared<CheckpointReport>();
  rep->n_steps = n_steps;
  if (stats) *stats = rep;
  if (n_steps == 0) return w0;

  // Nothing to differentiate: a plain loop, no states kept.
  bool differentiable = false;
  if (Tape::current().recording()) {
    for (const Tensor& t : w0) differentiable = differentiable || t.requires_grad();
    for (const Tensor& t : params) differentiable = differentiable || t.requires_grad();
  }
  if (!differentiable) {
    Stored none;
    rep->forward_steps = n_steps;
    return run_forward(step, w0, params, n_steps, {}, none);
  }

  auto payload = std::make_shared<Payload>();
  payload->step = step;
  payload->policy = policy;
  payload->n = n_steps;
  for (const Tensor& t : w0) payload->w0.push_back(t.detach());
  for (const Tensor& t : params) payload->params.push_back(t.detach());
  for (const Tensor& t : payload->w0) {
    payload->w0_version.push_back(t.version());
    payload->state_bytes += t.nbytes();
  }
  for (const Tensor& t : payload->params) payload->p_version.push_back(t.version());
  payload->state = std::make_shared<LoopState>();
  payload->report = rep;

  TensorList out = run_forward(step, payload->w0, payload->params, n_steps, forward_positions(policy, n_steps),
                               payload->state->stored);
  rep->forward_steps = n_steps;
  rep->peak_stored_states = static_cast<std::int64_t>(payload->state->stored.size());
  rep->peak_stored_bytes = static_cast<std::size_t>(rep->peak_stored_states) * payload->state_bytes;

  OpAttrs attrs;
  attrs.payload = std::move(payload);
  TensorList inputs = w0;
  inputs.insert(inputs.end(), params.begin(), params.end());
  return record(kLoopDef, std::move(out), std::span<const Tensor>(inputs), {}, std::move(attrs));
}

}  // namespace hyperad
