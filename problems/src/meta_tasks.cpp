// Options, data pools, task sampling and linear heads shared by the meta-learning problems.
#include "meta_tasks.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "metrics.hpp"
#include "hyperad/bilevel/inner.hpp"

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
    b.ways = 2, b.shots = 2, b.queries = 3, b.tasks = 2, b.test_tasks = 20;
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
      {"tasks", std::to_string(b.tasks), "T: meta-train tasks (the inner state holds T heads)"},
      {"test_tasks", std::to_string(b.test_tasks), "meta-test tasks averaged by evaluate"},
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

TaskSet sample_tasks(const Dataset& pool, const std::vector<std::int64_t>& classes, std::int64_t tasks,
                     std::int64_t ways, std::int64_t shots, std::int64_t queries, Generator& gen) {
  TaskSet s{.tasks = tasks, .ways = ways, .shots = shots, .queries = queries};
  std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(pool.num_classes));
  for (std::int64_t c : classes) by_class[static_cast<std::size_t>(c)] = rows_of_class(pool, c);
  std::vector<std::int64_t> all_support, all_query;
  for (std::int64_t t = 0; t < tasks; ++t) {
    std::vector<std::int64_t> chosen = draw(classes, ways, gen);
    std::sort(chosen.begin(), chosen.end());
    std::vector<std::int64_t> srows, qrows;
    for (std::int64_t j = 0; j < ways; ++j) {
      const auto rows = draw(by_class[static_cast<std::size_t>(chosen[static_cast<std::size_t>(j)])], shots + queries, gen);
      srows.insert(srows.end(), rows.begin(), rows.begin() + shots);
      qrows.insert(qrows.end(), rows.begin() + shots, rows.end());
      s.support_labels.insert(s.support_labels.end(), static_cast<std::size_t>(shots), j);
      s.query_labels.insert(s.query_labels.end(), static_cast<std::size_t>(queries), j);
    }
    all_support.insert(all_support.end(), srows.begin(), srows.end());
    all_query.insert(all_query.end(), qrows.begin(), qrows.end());
    s.classes.push_back(std::move(chosen));
    s.support_rows.push_back(std::move(srows));
    s.query_rows.push_back(std::move(qrows));
  }
  NoGradGuard off;
  const std::int64_t d = pool.num_features();
  s.support = reshape(index_select(pool.features, 0, all_support), {tasks, ways * shots, d});
  s.query = reshape(index_select(pool.features, 0, all_query), {tasks, ways * queries, d});
  return s;
}

MetaData load_meta_data(const ProblemConfig& config, const std::string& problem, const std::string& dataset,
                        const MetaOptions& o, Generator& gen) {
  MetaData m{load_meta_pools(config, problem, dataset, o), nullptr, nullptr};
  m.train = std::make_shared<const TaskSet>(
      sample_tasks(m.pools.train, m.pools.train_classes, o.tasks, o.ways, o.shots, o.queries, gen));
  m.test = std::make_shared<const TaskSet>(
      sample_tasks(m.pools.test, m.pools.test_classes, o.test_tasks, o.ways, o.shots, o.queries, gen));
  return m;
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

Tensor stack_heads(const TensorList& w) { return stack(w, 0); }

HeadFit fit_heads(Head head, double rho, const Tensor& support, const Tensor& query, const TaskSet& tasks,
                  const Tensor& bias) {
  const double T = double(tasks.tasks);
  auto inner = [=, &tasks](const TensorList& w, const TensorList& b) {
    Tensor W = stack_heads(w);
    return head_loss(head, support, W, tasks.support_labels) + 0.5 * rho * sum(square(W - b[0]));
  };
  auto outer = [=, &tasks](const TensorList& w, const TensorList&) {
    return head_loss(head, query, stack_heads(w), tasks.query_labels) / T;
  };
  const double step = 1.0 / head_lipschitz(head, max_gram_eigenvalue(support), rho);
  TensorList start(static_cast<std::size_t>(tasks.tasks), bias.detach());
  bilevel::Problem p = bilevel::Problem::gradient_descent(inner, step, outer, start);
  bilevel::InnerResult r = bilevel::solve_inner(p, {bias.detach()}, start, {.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-9)});
  NoGradGuard off;
  Tensor W = stack_heads(r.state);
  return {head_accuracy(query, W, tasks.query_labels), p.outer(r.state, {bias}).item()};
}

}  // namespace hyperad::problems::meta
