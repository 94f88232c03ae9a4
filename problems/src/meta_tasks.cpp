// Options, data pools, task sampling and linear heads shared by the meta-learning problems.
#include "meta_tasks.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/memo.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "metrics.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/sampling.hpp"

namespace hyperad::problems::meta {

namespace {

// Fisher–Yates on a copy, keeping the first `count` entries: `count` distinct draws.
std::vector<std::int64_t> draw(std::vector<std::int64_t> from, std::int64_t count, Generator& gen) {
  const auto n = static_cast<std::int64_t>(from.size());
  for (std::int64_t j = 0; j < count; ++j) {
    const auto k = j + static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(n - j)));
    std::swap(from[static_cast<std::size_t>(j)], from[static_cast<std::size_t>(k)]);
  }
  from.resize(static_cast<std::size_t>(count));
  return from;
}

std::vector<std::int64_t> rows_of_class(const Dataset& ds, std::int64_t c) {
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < ds.labels.size(); ++i)
    if (ds.labels[i] == c) rows.push_back(static_cast<std::int64_t>(i));
  return rows;
}

// Average pooling of square images stored as rows of `x` [n, side²].
Tensor pool_images(const Tensor& x, std::int64_t side, std::int64_t f) {
  if (f == 1) return x;
  const std::int64_t n = x.size(0), out = side / f;
  const double* src = x.data<double>();
  Tensor y = zeros({n, out * out});
  double* dst = y.mutable_data<double>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t r = 0; r < side; ++r)
      for (std::int64_t c = 0; c < side; ++c)
        dst[i * out * out + (r / f) * out + c / f] += src[i * side * side + r * side + c] / double(f * f);
  return y;
}

Dataset load_source(const ProblemConfig& config, const std::string& problem, const std::string& dataset,
                    const MetaOptions& o) {
  if (dataset == "digits") return load_builtin("digits");
  try {
    return load_fashion_mnist(FashionMnistPart::train, {.limit = o.examples}, config.data_dir);
  } catch (const DataError& e) {
    throw DataError(fmt::format("problem '{}': {} (or point the data_dir setting at a directory holding the "
                                "four Fashion-MNIST files)",
                                problem, e.what()),
                    e.file(), e.line(), e.byte());
  }
}

std::string class_range(const std::vector<std::int64_t>& cs) {
  return cs.size() == 1 ? fmt::format("{}", cs.front()) : fmt::format("{}-{}", cs.front(), cs.back());
}

}  // namespace

MetaOptions meta_base_options(const ProblemConfig& config, const std::string& dataset) {
  MetaOptions b;
  b.pool = dataset == "fashion_mnist" ? 4 : 1;
  if (config.small) {
    b.ways = 2, b.shots = 2, b.queries = 3, b.tasks = 2, b.test_tasks = 20, b.val_tasks = 4;
    b.pool = dataset == "fashion_mnist" ? 7 : 2;  // 16 features
  }
  return b;
}

MetaOptions parse_meta_options(const ProblemConfig& config, const std::string& problem, MetaOptions base) {
  MetaOptions o = base;
  o.ways = option_int(config, problem, "ways", base.ways, 2, 9);
  o.shots = option_int(config, problem, "shots", base.shots, 1, 1000);
  o.queries = option_int(config, problem, "queries", base.queries, 1, 1000);
  o.tasks = option_int(config, problem, "tasks", base.tasks, 1, 10000);
  o.test_tasks = option_int(config, problem, "test_tasks", base.test_tasks, 1, 100000);
  o.val_tasks = option_int(config, problem, "val_tasks", base.val_tasks, 1, 100000);
  o.task_pool = option_int(config, problem, "task_pool", base.task_pool, 0, std::int64_t{1} << 40);
  o.train_classes = option_int(config, problem, "train_classes", base.train_classes, 1, 9);
  o.rho = option_double(config, problem, "rho", base.rho, 1e-3, 1e4);
  o.standardize = option_bool(config, problem, "standardize", base.standardize);
  o.pool = option_int(config, problem, "pool", base.pool, 1, 28);
  o.examples = option_int(config, problem, "examples", base.examples, 100, 60000);
  const std::string head = option_string(config, "head", base.head == Head::softmax ? "softmax" : "ridge");
  if (head != "softmax" && head != "ridge")
    throw ValueError(fmt::format("problem '{}': option head='{}' is not one of softmax, ridge", problem, head));
  o.head = head == "softmax" ? Head::softmax : Head::ridge;
  const std::string on = option_string(config, "meta_test", base.test_on_classes ? "classes" : "examples");
  if (on != "classes" && on != "examples")
    throw ValueError(fmt::format("problem '{}': option meta_test='{}' is not one of classes, examples", problem, on));
  o.test_on_classes = on == "classes";
  return o;
}

std::vector<OptionInfo> meta_option_infos(const MetaOptions& b, const std::string& default_meta_test) {
  return {
      {"ways", std::to_string(b.ways), "N: classes per task"},
      {"shots", std::to_string(b.shots), "K: support examples per class"},
      {"queries", std::to_string(b.queries), "query examples per class"},
      {"tasks", std::to_string(b.tasks), "T: tasks of the fixed problem (its inner state holds T heads)"},
      {"test_tasks", std::to_string(b.test_tasks), "meta-test tasks averaged by evaluate (with a 95% interval)"},
      {"val_tasks", std::to_string(b.val_tasks), "episodic runs: validation tasks (meta-train classes) of val_acc"},
      {"task_pool", "0", "episodic runs: draw tasks from a pool of this many (0: a fresh task every draw)"},
      {"train_classes", std::to_string(b.train_classes), "k: classes [0, k) meta-train, [k, 10) meta-test"},
      {"rho", fmt::format("{}", b.rho), "ρ: strength of the heads' ℓ2 term"},
      {"head", "softmax", "task head loss: softmax (multinomial) or ridge (one-vs-rest squares)"},
      {"meta_test", default_meta_test,
       "classes: meta-test on the held-out classes; examples: on held-out examples of the meta-train classes"},
      {"standardize", "true", "standardize features with the meta-train pool's statistics"},
      {"pool", "1 (digits), 4 (fashion_mnist)", "average-pool the images by this factor (must divide 8 or 28)"},
      {"examples", std::to_string(b.examples), "fashion_mnist: training images read (the first ones)"},
  };
}

MetaPools load_meta_pools(const ProblemConfig& config, const std::string& problem, const std::string& dataset,
                          const MetaOptions& o) {
  Dataset ds = load_source(config, problem, dataset, o);
  const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(double(ds.num_features()))));
  if (side % o.pool != 0)
    throw ValueError(fmt::format("problem '{}': option pool={} does not divide the image side {} of {}", problem,
                                 o.pool, side, dataset));
  ds.features = pool_images(ds.features, side, o.pool);
  const std::int64_t C = ds.num_classes;
  if (o.train_classes >= C)
    throw ValueError(fmt::format("problem '{}': option train_classes={} leaves no meta-test classes ({} has {})",
                                 problem, o.train_classes, dataset, C));

  MetaPools p;
  for (std::int64_t c = 0; c < C; ++c) (c < o.train_classes ? p.train_classes : p.test_classes).push_back(c);
  auto need_classes = [&](const std::vector<std::int64_t>& cs, const char* side_name) {
    if (o.ways > static_cast<std::int64_t>(cs.size()))
      throw ValueError(fmt::format("problem '{}': ways={} needs {} classes on the {} side, but train_classes={} "
                                   "gives it {} (classes {})",
                                   problem, o.ways, o.ways, side_name, o.train_classes, cs.size(), class_range(cs)));
  };
  need_classes(p.train_classes, "meta-train");

  std::vector<std::int64_t> train_rows, test_rows;
  Generator gen(config.seed ^ 0x6d657461ULL);  // the halves of held-out examples
  for (std::int64_t c = 0; c < C; ++c) {
    std::vector<std::int64_t> rows = rows_of_class(ds, c);
    if (c >= o.train_classes) {
      if (o.test_on_classes) test_rows.insert(test_rows.end(), rows.begin(), rows.end());
    } else if (o.test_on_classes) {
      train_rows.insert(train_rows.end(), rows.begin(), rows.end());
    } else {
      rows = draw(rows, static_cast<std::int64_t>(rows.size()), gen);
      const auto half = rows.size() / 2;
      train_rows.insert(train_rows.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(half));
      test_rows.insert(test_rows.end(), rows.begin() + static_cast<std::ptrdiff_t>(half), rows.end());
    }
  }
  if (o.test_on_classes) {
    need_classes(p.test_classes, "meta-test");
  } else {
    p.test_classes = p.train_classes;
  }
  p.train = subset(ds, train_rows);
  p.test = subset(ds, test_rows);
  auto need_examples = [&](const Dataset& pool, const std::vector<std::int64_t>& cs, const char* name) {
    for (std::int64_t c : cs) {
      const auto have = static_cast<std::int64_t>(rows_of_class(pool, c).size());
      if (have < o.shots + o.queries)
        throw ValueError(fmt::format("problem '{}': shots + queries = {} exceeds the {} examples of class {} in the "
                                     "{} pool",
                                     problem, o.shots + o.queries, have, c, name));
    }
  };
  need_examples(p.train, p.train_classes, "meta-train");
  need_examples(p.test, p.test_classes, "meta-test");
  if (o.standardize) {
    // Per-pixel centering but one global scale: per-pixel scaling would blow up border
    // pixels that are almost always blank in the meta-train pool (and the Lipschitz bound).
    Standardizer st = Standardizer::fit(p.train.features);
    const std::vector<double> x = p.train.features.to_vector();
    double var = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double c = x[i] - st.mean[i % st.mean.size()];
      var += c * c;
    }
    const double scale = std::sqrt(var / double(x.size()));
    std::fill(st.scale.begin(), st.scale.end(), scale > 0 ? scale : 1.0);
    st.apply(p.train);
    st.apply(p.test);
  }
  p.description = fmt::format("{} ({} features{}), meta-train classes {}, meta-test {} {}", dataset,
                              ds.num_features(), o.pool > 1 ? fmt::format(", {}x{} pooled", o.pool, o.pool) : "",
                              class_range(p.train_classes), o.test_on_classes ? "classes" : "held-out examples of",
                              class_range(p.test_classes));
  return p;
}

namespace {

// Accumulates tasks into a TaskSet: each draws N classes of `classes` and K + Q examples of
// each from `gen`.
class TaskDraw {
 public:
  TaskDraw(const Dataset& pool, const std::vector<std::int64_t>& classes, std::int64_t ways, std::int64_t shots,
           std::int64_t queries)
      : pool_(pool), classes_(classes), by_class_(static_cast<std::size_t>(pool.num_classes)) {
    s_.ways = ways, s_.shots = shots, s_.queries = queries;
    for (std::int64_t c : classes) by_class_[static_cast<std::size_t>(c)] = rows_of_class(pool, c);
  }
  void add(Generator& gen) {
    const std::int64_t ways = s_.ways, shots = s_.shots, queries = s_.queries;
    std::vector<std::int64_t> chosen = draw(classes_, ways, gen);
    std::sort(chosen.begin(), chosen.end());
    std::vector<std::int64_t> srows, qrows;
    for (std::int64_t j = 0; j < ways; ++j) {
      const auto rows = draw(by_class_[static_cast<std::size_t>(chosen[static_cast<std::size_t>(j)])], shots + queries, gen);
      srows.insert(srows.end(), rows.begin(), rows.begin() + shots);
      qrows.insert(qrows.end(), rows.begin() + shots, rows.end());
      s_.support_labels.insert(s_.support_labels.end(), static_cast<std::size_t>(shots), j);
      s_.query_labels.insert(s_.query_labels.end(), static_cast<std::size_t>(queries), j);
    }
    all_support_.insert(all_support_.end(), srows.begin(), srows.end());
    all_query_.insert(all_query_.end(), qrows.begin(), qrows.end());
    s_.classes.push_back(std::move(chosen));
    s_.support_rows.push_back(std::move(srows));
    s_.query_rows.push_back(std::move(qrows));
    ++s_.tasks;
  }
  TaskSet finish() {
    NoGradGuard off;
    const std::int64_t d = pool_.num_features();
    s_.support = reshape(index_select(pool_.features, 0, all_support_), {s_.tasks, s_.ways * s_.shots, d});
    s_.query = reshape(index_select(pool_.features, 0, all_query_), {s_.tasks, s_.ways * s_.queries, d});
    return std::move(s_);
  }

 private:
  const Dataset& pool_;
  const std::vector<std::int64_t>& classes_;
  std::vector<std::vector<std::int64_t>> by_class_;
  std::vector<std::int64_t> all_support_, all_query_;
  TaskSet s_;
};

}  // namespace

TaskSet sample_tasks(const Dataset& pool, const std::vector<std::int64_t>& classes, std::int64_t tasks,
                     std::int64_t ways, std::int64_t shots, std::int64_t queries, Generator& gen) {
  TaskDraw d(pool, classes, ways, shots, queries);
  for (std::int64_t t = 0; t < tasks; ++t) d.add(gen);
  return d.finish();
}

TaskSet sample_tasks_by_id(const Dataset& pool, const std::vector<std::int64_t>& classes,
                           const std::vector<std::int64_t>& ids, std::uint64_t seed, std::int64_t ways,
                           std::int64_t shots, std::int64_t queries) {
  TaskDraw d(pool, classes, ways, shots, queries);
  for (std::int64_t u : ids) {
    if (u < 0) throw ValueError(fmt::format("sample_tasks_by_id: task id {} is negative", u));
    Generator gen(bilevel::mix_seed(seed, static_cast<std::uint64_t>(u)));
    d.add(gen);
  }
  return d.finish();
}

std::uint64_t task_stream(std::uint64_t seed, TaskStream stream) {
  return bilevel::mix_seed(seed, 0x7461736bULL, static_cast<std::uint64_t>(stream));
}

Tensor with_intercept(const Tensor& z) {
  Shape shape = z.shape();
  std::vector<std::int64_t> dims(shape.rank());
  for (int a = 0; a < shape.rank(); ++a) dims[static_cast<std::size_t>(a)] = shape[a];
  dims.back() = 1;
  return concat({z, ones(Shape(dims), z.dtype())}, z.rank() - 1);
}

namespace {
// The heads' scores of every query, all tasks stacked: z [T, n, q], w [T, N, q] -> [T·n, N].
Tensor head_scores(const Tensor& z, const Tensor& w) {
  return reshape(matmul_t(z, w, false, true), {z.size(0) * z.size(1), w.size(1)});
}
}  // namespace

Tensor head_loss(Head head, const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels) {
  const std::int64_t T = z.size(0), n = z.size(1);
  const Tensor logits = head_scores(z, w);
  if (head == Head::softmax) return cross_entropy(logits, labels, Reduction::sum) / double(n);
  // ½‖s − e_y‖² = ½‖s‖² − s_y + ½: no one-hot tensor needed.
  return (0.5 * sum(square(logits)) - sum(gather(logits, 1, labels))) / double(n) + 0.5 * double(T);
}

double head_accuracy(const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels) {
  NoGradGuard off;
  return detail::multiclass_accuracy(head_scores(z, w), labels);
}

double max_gram_eigenvalue(const Tensor& z) {
  const std::int64_t T = z.size(0), n = z.size(1), q = z.size(2);
  const std::vector<double> v = z.to_vector();
  double best = 0;
  std::vector<double> x(static_cast<std::size_t>(q)), zx(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < T; ++t) {
    const double* Z = v.data() + t * n * q;
    for (std::int64_t j = 0; j < q; ++j) x[static_cast<std::size_t>(j)] = 1.0 + 0.01 * double(j % 7);
    double ev = 0;
    for (int it = 0; it < 100; ++it) {  // x ← ZᵀZx / ‖ZᵀZx‖, Rayleigh quotient ‖Zx‖²/‖x‖²
      double xx = 0, zz = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::int64_t j = 0; j < q; ++j) s += Z[i * q + j] * x[static_cast<std::size_t>(j)];
        zx[static_cast<std::size_t>(i)] = s;
        zz += s * s;
      }
      for (double e : x) xx += e * e;
      ev = zz / xx;
      double norm2 = 0;
      for (std::int64_t j = 0; j < q; ++j) {
        double s = 0;
        for (std::int64_t i = 0; i < n; ++i) s += Z[i * q + j] * zx[static_cast<std::size_t>(i)];
        x[static_cast<std::size_t>(j)] = s;
        norm2 += s * s;
      }
      if (norm2 == 0) break;
      for (double& e : x) e /= std::sqrt(norm2);
    }
    best = std::max(best, ev / double(n));
  }
  return best;
}

double head_lipschitz(Head head, double s, double rho) { return (head == Head::softmax ? 0.5 * s : s) + rho; }

HeadFit fit_heads(Head head, double rho, const Tensor& support, const Tensor& query, const TaskSet& tasks,
                  const Tensor& bias) {
  const double T = double(tasks.tasks);
  auto inner = [=, &tasks](const TensorList& w, const TensorList& b) {
    return head_loss(head, support, w[0], tasks.support_labels) + 0.5 * rho * sum(square(w[0] - b[0]));
  };
  auto outer = [=, &tasks](const TensorList& w, const TensorList&) {
    return head_loss(head, query, w[0], tasks.query_labels) / T;
  };
  const double step = 1.0 / head_lipschitz(head, max_gram_eigenvalue(support), rho);
  const Tensor b = bias.detach();
  const TensorList start{broadcast_to(b, Shape{tasks.tasks, b.size(0), b.size(1)}).clone()};
  bilevel::Problem p = bilevel::Problem::gradient_descent(inner, step, outer, start);
  bilevel::InnerResult r = bilevel::solve_inner(p, {b}, start, {.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-9)});
  NoGradGuard off;
  // Per-task accuracies, for the interval.
  const std::vector<double> scores = matmul_t(query, r.state[0], false, true).to_vector();  // [T, n, N]
  const std::int64_t n = query.size(1), N = r.state[0].size(1);
  double sum_acc = 0, sum_sq = 0;
  for (std::int64_t t = 0; t < tasks.tasks; ++t) {
    std::int64_t hits = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double* row = scores.data() + (t * n + i) * N;
      const auto best = std::max_element(row, row + N) - row;
      hits += best == tasks.query_labels[static_cast<std::size_t>(t * n + i)];
    }
    const double a = double(hits) / double(n);
    sum_acc += a;
    sum_sq += a * a;
  }
  const double mean_acc = sum_acc / T;
  const double var = T > 1 ? std::max(0.0, (sum_sq - T * mean_acc * mean_acc) / (T - 1)) : 0.0;
  return {mean_acc, 1.96 * std::sqrt(var / T), p.outer(r.state, {b}).item()};
}

bilevel::Episode head_episode(const HeadModel& m, std::shared_ptr<const TaskSet> tasks) {
  const std::int64_t T = tasks->tasks, nk = tasks->ways * tasks->shots, nq = tasks->ways * tasks->queries;
  const double tasks_d = double(T);
  // Features that do not depend on λ are computed once per task set.
  Tensor zs, zq;
  if (m.fixed_features) {
    NoGradGuard off;
    zs = m.features(tasks->support, {});
    zq = m.features(tasks->query, {});
  }
  // The features of the positions `b` (all: `all`) of every task of x. Those of all
  // positions go through a Memo: an inner solve evaluates Φ at one λ for all its steps, and
  // ITD records them once for its t steps (their cotangents meet at one variable) instead
  // of once per step (checkpointed ITD still records them per step: fresh leaves).
  const auto memo = std::array<std::shared_ptr<Memo>, 2>{std::make_shared<Memo>(), std::make_shared<Memo>()};
  auto feats = [m, zs, zq, memo](const Tensor& x, bool support, const bilevel::Batch& b, bool all,
                                 const TensorList& lam) {
    if (m.fixed_features) return all ? (support ? zs : zq) : index_select(support ? zs : zq, 1, b);
    if (!all) return m.features(index_select(x, 1, b), lam);
    TensorList inputs{x};
    inputs.insert(inputs.end(), lam.begin(), lam.end());
    return memo[support ? 0 : 1]->get(inputs, [&] { return m.features(x, lam); });
  };
  auto penalty = [m](const Tensor& w, const TensorList& lam) {
    return 0.5 * m.rho * sum(square(m.biased ? w - lam[0] : w));
  };
  // Labels of the positions `b` of every task (T·|b|, task-major).
  auto labels_at = [T](const std::vector<std::int64_t>& labels, std::int64_t n, const bilevel::Batch& b) {
    std::vector<std::int64_t> out;
    out.reserve(static_cast<std::size_t>(T) * b.size());
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t j : b) out.push_back(labels[static_cast<std::size_t>(t * n + j)]);
    return out;
  };
  // The heads' loss on the positions `b` of the support (or query) set (all of them: the problem itself).
  auto loss_at = [=](bool support, const Tensor& w, const TensorList& lam, const bilevel::Batch& b) {
    const Tensor& x = support ? tasks->support : tasks->query;
    const std::vector<std::int64_t>& labels = support ? tasks->support_labels : tasks->query_labels;
    const std::int64_t n = support ? nk : nq;
    const bool all = bilevel::is_full_batch(b, n);
    return head_loss(m.head, feats(x, support, b, all, lam), w, all ? labels : labels_at(labels, n, b));
  };
  // The inner loss and E on the support/query positions ξ, ζ.
  auto inner = [=](const TensorList& w, const TensorList& lam, const bilevel::Batch& xi) {
    return loss_at(true, w[0], lam, xi) + penalty(w[0], lam);
  };
  auto outer = [=](const TensorList& w, const TensorList& lam, const bilevel::Batch& zeta) {
    return loss_at(false, w[0], lam, zeta) / tasks_d;
  };
  const TensorList w0{zeros({T, m.ways, m.q})};
  const bilevel::Batch all_s = bilevel::full_batch(nk), all_q = bilevel::full_batch(nq);
  bilevel::Episode e;
  e.problem = bilevel::Problem::gradient_descent(
      [inner, all_s](const TensorList& w, const TensorList& l) { return inner(w, l, all_s); }, m.step,
      [outer, all_q](const TensorList& w, const TensorList& l) { return outer(w, l, all_q); }, w0);
  e.inner_examples = nk;
  e.outer_examples = nq;
  e.stochastic = bilevel::StochasticProblem::gradient_descent(inner, m.step, nk, outer, nq, w0);
  return e;
}

}  // namespace hyperad::problems::meta
