#!/usr/bin/env python3
"""The PyTorch-from-Python side of bench_python_torch (bench/bench_python_torch.cpp).

The hypergradients of bench_torch_baseline (logistic regression with one l2 strength
e^lambda_j per feature, Phi(w) = w - eta * grad_w L(w, lambda), validation logistic loss
as the outer objective, t steps from w = 0) written in Python the way hypertorch writes
them: ITD unrolls the t steps under create_graph; AID records Phi once at w_t and takes
d_w Phi^T v and d_lambda Phi^T v by double backward (fixed-point iteration, or CG to a
relative residual of 1e-10).

Started by the C++ bench as `torch_hypergradients.py DATA THREADS`. DATA holds float64
values: n, d, t, K, eta, then X [n, d], y [n], Xv [n, d], yv [n], lambda [d] (row-major,
little-endian). The script answers `ready <torch version> <threads>` (or `error <why>`),
then reads one method name per line (itd, aid-fp, aid-cg; quit ends) and answers each
with `<milliseconds> <h_0> ... <h_{d-1}>`: the time of the call alone, measured here, so
the pipe's cost is not counted against PyTorch.
"""
import sys
import time


def main():
    try:
        import numpy as np
        import torch
    except ImportError as e:  # the bench says how to install it
        print(f"error {e}", flush=True)
        return 0
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    raw = np.fromfile(path, dtype="<f8")
    n, d, t, K = (int(v) for v in raw[:4])
    eta = float(raw[4])
    pos = 5

    def take(*shape):
        nonlocal pos
        count = int(np.prod(shape))
        out = torch.from_numpy(raw[pos:pos + count].copy()).reshape(shape)
        pos += count
        return out

    X, y, Xv, yv, lam0 = take(n, d), take(n), take(n, d), take(n), take(d)
    if pos != raw.size:
        print(f"error {path}: {raw.size} values, expected {pos}", flush=True)
        return 0

    def inner(w, lam):
        return torch.nn.functional.softplus(-y * torch.mv(X, w)).mean() + 0.5 * (lam.exp() * w.square()).sum()

    def outer(w):
        return torch.nn.functional.softplus(-yv * torch.mv(Xv, w)).mean()

    def phi(w, lam):
        (g,) = torch.autograd.grad(inner(w, lam), w, create_graph=True)
        return w - eta * g

    def itd():
        lam = lam0.detach().requires_grad_(True)
        w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
        for _ in range(t):
            w = phi(w, lam)
        return torch.autograd.grad(outer(w), lam)[0]

    def inner_solve(lam):
        w = torch.zeros(d, dtype=torch.float64)
        for _ in range(t):
            wi = w.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(inner(wi, lam), wi)
            w = (wi - eta * g).detach()
        return w

    def aid(cg):
        lam = lam0.detach().requires_grad_(True)
        w = inner_solve(lam0).requires_grad_(True)
        p_w = phi(w, lam)
        (b,) = torch.autograd.grad(outer(w), w)

        def jt(v):
            return torch.autograd.grad(p_w, w, v, retain_graph=True)[0]

        v = torch.zeros_like(b)
        if not cg:
            for _ in range(K):
                v = jt(v) + b
        else:
            r = b.clone()
            p = r.clone()
            rs = r.dot(r).item()
            stop = 1e-20 * rs  # |r| <= 1e-10 |b|
            k = 0
            while k < K and rs > stop:
                Ap = p - jt(p)
                alpha = rs / p.dot(Ap).item()
                v = v + alpha * p
                r = r - alpha * Ap
                rs_new = r.dot(r).item()
                p = r + (rs_new / rs) * p
                rs = rs_new
                k += 1
        return torch.autograd.grad(p_w, lam, v)[0]

    methods = {"itd": itd, "aid-fp": lambda: aid(False), "aid-cg": lambda: aid(True)}
    print(f"ready {torch.__version__} {torch.get_num_threads()}", flush=True)
    for line in sys.stdin:
        name = line.strip()
        if name == "quit":
            break
        if name not in methods:
            print(f"error unknown method {name!r}", flush=True)
            continue
        start = time.perf_counter()
        h = methods[name]()
        ms = 1e3 * (time.perf_counter() - start)
        print(f"{ms!r} " + " ".join(repr(float(x)) for x in h), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
