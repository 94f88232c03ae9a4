#pragma once
/// \file linsolve.hpp
/// Matrix-free linear solvers for A x = b, as values. x and b are tensor lists (one block
/// per parameter tensor, any shapes, float32 or float64); A is an `Operator`, a callback.
///
/// Every solver has one signature — operator, right-hand side, start, options → solution
/// and report — and runs behind one driver (`Solver::operator()`) that checks the inputs,
/// counts and shape-checks every application of A, adds the optional ridge term, checks
/// what the solver assumes of A (symmetry, a transpose), and finishes the report with the
/// true residual. So a solver written by a user gets all of that too:
///
///     linsolve::Solver jacobi("Jacobi", [](const linsolve::Operator& A, const TensorList& b,
///                                          const TensorList& x0, const linsolve::Options& o,
///                                          linsolve::Report& r) { ...; return x; });
///     linsolve::Solution s = jacobi(A, b);
///
/// | solver        | needs                              | products per iteration |
/// |---------------|------------------------------------|------------------------|
/// | `richardson`  | spectral radius of I − ωA below 1  | 1                      |
/// | `neumann`     | A = I − M with ‖M‖ < 1             | 1                      |
/// | `cg`          | A symmetric positive definite      | 1                      |
/// | `gmres`       | A non-singular                     | 1 (+ 1 per restart)    |
/// | `bicgstab`    | A non-singular                     | 2                      |
/// | `normal_cg`   | A non-singular, and Aᵀ             | 2 (A and Aᵀ)           |
/// | `dense_lu`    | A non-singular, few unknowns       | n (the dense matrix)   |
///
/// One stopping rule (`StoppingRule`) serves all: converged when ‖b − A x‖ ≤ tolerance =
/// max(atol, rtol·‖b‖), or when the residual is below what the arithmetic resolves
/// (ε·‖b‖); diverged when it is not finite or grows `divergence_factor`-fold above its
/// smallest value; stopped at the iteration cap otherwise. A zero tolerance runs to the
/// cap unless the residual becomes exactly zero; nothing divides by zero after exact
/// convergence. Nothing here records on the tape: the vectors are plain values, and the
/// operator may run reverse sweeps of its own.
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/autodiff/tolerance.hpp"

namespace hyperad::linsolve {

/// x ↦ A x on tensor lists: must return a list of x's shapes and dtypes.
using LinearMap = std::function<TensorList(const TensorList& x)>;

/// What is known of the operator's symmetry.
enum class Symmetry {
  unknown,       ///< not declared: CG warns, or probes it (Options::probe_symmetry)
  symmetric,     ///< declared symmetric (e.g. the Hessian of a loss)
  nonsymmetric,  ///< declared non-symmetric: CG refuses it
};

/// A matrix-free linear operator.
struct Operator {
  LinearMap apply{};             ///< x ↦ A x (required)
  LinearMap apply_transposed{};  ///< x ↦ Aᵀ x (optional; normal_cg needs it)
  /// x ↦ M x for an operator A = I − M (optional): neumann sums the powers of M with it,
  /// exactly; without it M x is computed as x − A x.
  LinearMap iteration_matrix{};
  Symmetry symmetry = Symmetry::unknown;

  /// A = I − M from M (and Mᵀ, if known): the form of implicit differentiation's systems.
  static Operator identity_minus(LinearMap M, LinearMap Mt = {}, Symmetry symmetry = Symmetry::unknown);
};

/// Options every solver takes.
struct Options {
  /// Converged when ‖b − A x‖ ≤ max(atol, rtol · ‖b‖).
  Tolerance tolerance = Tolerance::relative(1e-10);
  int max_iterations = 1000;  ///< cap on iterations
  /// Solve (A + ridge·I) x = b instead: Tikhonov regularization of a singular or
  /// ill-conditioned system (the reported residual is the regularized system's).
  double ridge = 0.0;
  /// Diverged when the residual exceeds this factor times its smallest value so far.
  double divergence_factor = 1e8;
  /// A solver that needs a symmetric operator (cg) probes one of unknown symmetry with two
  /// random vectors a, b (two products): |⟨a, A b⟩ − ⟨b, A a⟩| > 1e-6·‖a‖‖b‖‖A‖ refuses it.
  /// On by default (CG on a non-symmetric operator returns wrong answers); off: it only warns.
  bool probe_symmetry = true;
  /// Recompute ‖b − A x‖ at the end (one more product) when the solver's own residual is
  /// a recursive estimate (cg, bicgstab, normal_cg, neumann). A "converged" whose true
  /// residual is far above the target is then reported as a breakdown (record_true_residual).
  bool verify_residual = true;
};

/// How a solve ended.
enum class Status {
  converged,      ///< the tolerance (or the arithmetic's resolution) was reached
  iteration_cap,  ///< max_iterations ran out first
  breakdown,      ///< the method cannot go on (a zero pivot, p'Ap ≤ 0, ...): see `reason`
  diverged,       ///< the residual exploded or is not finite: x is not usable
};
/// "converged", "iteration cap", "breakdown", "diverged".
const char* status_name(Status s);

/// What a solve did.
struct Report {
  std::string solver;  ///< e.g. "CG"
  Status status = Status::iteration_cap;
  int iterations = 0;  ///< the solver's iterations (Richardson/CG steps, GMRES Arnoldi steps, LU columns)
  int products = 0;    ///< applications of A or Aᵀ, the symmetry probe and the final check included
  /// Operator applications per iteration, a transposed one counted twice (a Jacobian-vector
  /// product by double reverse costs two pullbacks): the unit of sample accounting.
  int iteration_cost = 1;
  /// ‖b − A x‖ of the returned x: the true residual, recomputed at the end (unless the
  /// solver's own is already exact, or the caller recomputes it: verify_residual off).
  double residual = std::numeric_limits<double>::quiet_NaN();
  double rhs_norm = 0.0;   ///< ‖b‖
  double tolerance = 0.0;  ///< max(atol, rtol · ‖b‖), the target it was compared with
  std::string reason;      ///< why it stopped, with the numbers (for messages)
  std::vector<std::string> warnings;  ///< what the solver assumed but could not check
  bool converged() const { return status == Status::converged; }
  /// residual / ‖b‖ (the residual itself when b = 0).
  double relative_residual() const { return rhs_norm > 0.0 ? residual / rhs_norm : residual; }
};

/// Sets report.residual to `true_residual` (‖b − A x‖ recomputed for the returned x) and
/// checks it against the status: a "converged" whose true residual is not finite becomes
/// diverged, and one above max(10·tolerance, 10⁻⁸‖b‖, 10⁴·ε‖b‖) becomes a breakdown (a
/// recursive residual that drifted, as on a singular system). `like`: the working precision. The driver calls it (with
/// Options::verify_residual), and so does implicit_vjp after its own final pullback.
void record_true_residual(Report& report, double true_residual, const TensorList& like);

struct Solution {
  TensorList x;
  Report report;
};

/// The stopping rule of every built-in solver (see the file comment). Give it each new
/// residual norm; it says when to stop and fills the report's status and reason.
class StoppingRule {
 public:
  /// `like` gives the working precision (float32 if any tensor is float32).
  StoppingRule(const Options& options, double rhs_norm, const TensorList& like);
  /// True when the solver must stop at `residual` after `iteration` iterations.
  bool done(double residual, int iteration, Report& report);
  /// The target max(atol, rtol·‖b‖).
  double tolerance() const { return tolerance_; }
  /// ε·‖b‖: below it the residual is rounding noise.
  double floor() const { return floor_; }
  /// ε of the working precision (float32's if any tensor of `like` is float32).
  double epsilon() const { return epsilon_; }

 private:
  double tolerance_, epsilon_, floor_, divergence_factor_;
  double best_ = std::numeric_limits<double>::infinity();
  int max_iterations_;
};

/// A linear solver: a name, an algorithm, and what the algorithm assumes.
class Solver {
 public:
  /// The algorithm proper. It receives the driver's operator (counted, shape-checked, with
  /// the ridge), b, the start x0 (empty: zeros), the options and the report; it returns x
  /// and sets the report's status, reason, iterations and residual (StoppingRule does the
  /// status and reason).
  using Algorithm = std::function<TensorList(const Operator& A, const TensorList& b, const TensorList& x0,
                                             const Options& options, Report& report)>;
  struct Traits {
    bool needs_symmetric = false;  ///< refuses a non-symmetric operator; probes or warns on an unknown one
    bool needs_transpose = false;  ///< needs Operator::apply_transposed
    bool exact_residual = false;   ///< its reported residual is already ‖b − A x‖ of the returned x
    int iteration_cost = 1;        ///< see Report::iteration_cost
  };

  Solver(std::string name, Algorithm algorithm, Traits traits);
  Solver(std::string name, Algorithm algorithm) : Solver(std::move(name), std::move(algorithm), Traits{}) {}

  /// Solves A x = b from x0 (empty: zeros). Throws ValueError for bad options, an empty or
  /// undefined b, an x0 unlike b, an operator the solver cannot take (non-symmetric for
  /// CG, no transpose for normal-CG); ShapeError when A returns the wrong shapes.
  /// Convergence failures are not thrown: they are in the report.
  Solution operator()(const Operator& A, const TensorList& b, const TensorList& x0 = {},
                      const Options& options = {}) const;

  const std::string& name() const { return name_; }
  const Traits& traits() const { return traits_; }

 private:
  std::string name_;
  Algorithm algorithm_;
  Traits traits_;
};

// ---- the built-in solvers ---------------------------------------------------------------------

/// "FP": fixed-point (Richardson) iteration x ← x + ω (b − A x). For A = I − M and ω = 1
/// it is x ← b + M x, the Neumann series.
Solver richardson(double omega = 1.0);
/// "Neumann": the partial sums Σₖ Mᵏ b of (I − M)⁻¹ b, one product per term; it stops on
/// the norm of the last term added (an upper bound on the residual when ‖M‖ ≤ 1).
/// Neumann with K iterations equals richardson with K + 1 from zero.
Solver neumann();
/// "CG": conjugate gradient, for symmetric positive definite A. Stops (breakdown) at
/// p'Ap ≤ 0, where A is not positive definite.
Solver cg();
/// "GMRES": restarted GMRES(restart) (Arnoldi by modified Gram–Schmidt, Givens rotations);
/// the residual is recomputed at the end of every cycle.
Solver gmres(int restart = 30);
/// "BiCGStab": van der Vorst's stabilized bi-conjugate gradient, for any non-singular A,
/// two products an iteration and short recurrences (memory of six vectors).
Solver bicgstab();
/// "normal-CG": CG on the normal equations AᵀA x = Aᵀb, for any non-singular A; its
/// tolerance applies to the normal equations' residual ‖Aᵀ(b − A x)‖ ≤ max(atol, rtol·‖Aᵀb‖).
Solver normal_cg();
/// "LU": the dense matrix of A built column by column (n products for n unknowns),
/// factorized with partial pivoting, solved. Refuses systems of more than `max_unknowns`;
/// a matrix singular to working precision is a breakdown.
Solver dense_lu(std::int64_t max_unknowns = 4000);

/// One row of the solvers' name table.
struct SolverInfo {
  const char* name;         ///< the solver's name ("FP", "CG", ...), as its report says it
  const char* description;  ///< one line, for listings
  Solver (*make)();         ///< the solver with its default settings
};
/// Every built-in solver, in the order listings show them.
std::span<const SolverInfo> solver_table();
/// The built-in solver called `name` (case-insensitive: "cg", "normal-CG", ...), with its
/// default settings; ValueError listing the names otherwise.
Solver solver_named(std::string_view name);

}  // namespace hyperad::linsolve
