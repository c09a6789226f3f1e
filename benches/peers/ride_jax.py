"""A JAX peer of ride's SLSTM layer and RIDE training step, for `make bench-peers`.

Same work as ride's benchmark kernels (src/bench/perf.rs): 50 grids of 20x18 cells, 12 inputs per
cell (the nb_size-5 causal neighbourhood), H = 64, float32; the MCGSM of the training step has
C = 32 components, S = 4 scales, F = 32 features. Gate order, gate formulas and the loss are
ride's (src/model/gates.rs, src/model/mcgsm.rs):

    g = tanh(z_g), i, f_r, f_c, o = sigmoid(z_.)
    c = i*g + f_c*c_left + f_r*c_up,  h = tanh(o*c)

Three schedules of the same recurrence, all jit-compiled (compile time excluded):
  scan       per-pixel: lax.scan over grid rows, inside it lax.scan over columns
  diag_scan  anti-diagonal wavefront: one lax.scan step per diagonal, each diagonal padded to
             the grid height (cells outside the grid masked to zero)
  diag_loop  anti-diagonal wavefront unrolled at trace time, every diagonal at its exact length
The input projection of all cells is one matmul outside the recurrence in every schedule.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

B, R, C, N_IN, H = 50, 20, 18, 12, 64
NC, NS, NF = 32, 4, 32
HALF_LN_2PI = 0.5 * math.log(2 * math.pi)


def gates(z, c_left, c_up):
    """z [..., 5H] pre-activations -> (h, c)."""
    g = jnp.tanh(z[..., :H])
    i = jax.nn.sigmoid(z[..., H:2 * H])
    fr = jax.nn.sigmoid(z[..., 2 * H:3 * H])
    fc = jax.nn.sigmoid(z[..., 3 * H:4 * H])
    o = jax.nn.sigmoid(z[..., 4 * H:])
    c = i * g + fc * c_left + fr * c_up
    return jnp.tanh(o * c), c


def input_projection(w, b, x):
    """x [B, R, C, N_IN] -> [B, R, C, 5H]."""
    return jnp.einsum("brcn,gn->brcg", x, w[:, :N_IN]) + b


def slstm_scan(w, b, x):
    """Per-pixel schedule. x [B, R, C, N_IN] -> h [B, R, C, H]."""
    wr_t = w[:, N_IN:].T  # [2H, 5H]
    zx = input_projection(w, b, x).transpose(1, 2, 0, 3)  # [R, C, B, 5H]

    def row(carry, zx_row):  # carry: h_up, c_up [C, B, H]
        h_up, c_up = carry

        def cell(state, inp):
            h_left, c_left = state
            z_ij, hu, cu = inp
            z = z_ij + jnp.concatenate([h_left, hu], -1) @ wr_t
            h, c = gates(z, c_left, cu)
            return (h, c), (h, c)

        zero = jnp.zeros((B, H), x.dtype)
        _, (hs, cs) = lax.scan(cell, (zero, zero), (zx_row, h_up, c_up))
        return (hs, cs), hs

    zero = jnp.zeros((C, B, H), x.dtype)
    _, hs = lax.scan(row, (zero, zero), zx)  # [R, C, B, H]
    return hs.transpose(2, 0, 1, 3)


# cells of each anti-diagonal d: rows i with 0 <= d - i < C
DIAGS = [[(i, d - i) for i in range(R) if 0 <= d - i < C] for d in range(R + C - 1)]


def slstm_diag_scan(w, b, x):
    """Padded wavefront schedule. x [B, R, C, N_IN] -> h [B, R, C, H]."""
    wr_t = w[:, N_IN:].T
    zx = input_projection(w, b, x)  # [B, R, C, 5H]
    nd = R + C - 1
    ii = np.arange(R)[None, :]
    jj = np.arange(nd)[:, None] - ii  # [D, R]
    valid = (jj >= 0) & (jj < C)
    jc = np.clip(jj, 0, C - 1)
    zd = zx[:, ii.repeat(nd, 0), jc].transpose(1, 2, 0, 3)  # [D, R, B, 5H]
    mask = jnp.asarray(valid, x.dtype)[:, :, None, None]  # [D, R, 1, 1]

    def diag(state, inp):  # state: h, c of the previous diagonal [R, B, H], indexed by row
        h_prev, c_prev = state
        z_d, m = inp
        zero = jnp.zeros_like(h_prev[:1])
        h_up = jnp.concatenate([zero, h_prev[:-1]], 0)
        c_up = jnp.concatenate([zero, c_prev[:-1]], 0)
        z = z_d + jnp.concatenate([h_prev, h_up], -1) @ wr_t
        h, c = gates(z, c_prev, c_up)
        h, c = h * m, c * m
        return (h, c), h

    zero = jnp.zeros((R, B, H), x.dtype)
    _, hd = lax.scan(diag, (zero, zero), (zd, mask))  # [D, R, B, H]
    ig = np.arange(R)[:, None].repeat(C, 1)
    jg = np.arange(C)[None, :].repeat(R, 0)
    return hd[ig + jg, ig].transpose(2, 0, 1, 3)  # cell (i, j) is row i of diagonal i + j


def slstm_diag_loop(w, b, x):
    """Exact-length wavefront, unrolled. x [B, R, C, N_IN] -> h [B, R, C, H]."""
    wr_t = w[:, N_IN:].T
    zx = input_projection(w, b, x)
    out = {}
    h_prev = c_prev = None
    for d, cells in enumerate(DIAGS):
        ii = np.array([i for i, _ in cells])
        jj = np.array([j for _, j in cells])
        z = zx[:, ii, jj]  # [B, n, 5H]: one gather per diagonal, outside the recurrence
        n = len(cells)
        if d == 0:
            zero = jnp.zeros((B, n, H), x.dtype)
            h, c = gates(z, zero, zero)
        else:
            # neighbours on diagonal d-1 (rows prev_i0 ...): left (i, j-1) has row i, up (i-1, j)
            prev_i0 = DIAGS[d - 1][0][0]
            zero = jnp.zeros((B, 1, H), x.dtype)
            hp = jnp.concatenate([zero, h_prev, zero], 1)  # row i of d-1 at index i - prev_i0 + 1
            cp = jnp.concatenate([zero, c_prev, zero], 1)
            # left (i, j-1) is row i of d-1, up (i-1, j) row i-1: both contiguous slices, the
            # pads standing in for the missing neighbours of j = 0 and i = 0
            lo, hi = ii[0] - prev_i0, ii[-1] - prev_i0 + 1
            h_left, h_up = hp[:, lo + 1:hi + 1], hp[:, lo:hi]
            z = z + jnp.concatenate([h_left, h_up], -1) @ wr_t
            h, c = gates(z, cp[:, lo + 1:hi + 1], cp[:, lo:hi])
        out[d] = h
        h_prev, c_prev = h, c
    # back to raster order with one gather: cell (i, j) is entry i - i0(d) of diagonal d = i + j
    start = np.cumsum([0] + [len(c) for c in DIAGS])
    perm = np.array([start[i + j] + i - DIAGS[i + j][0][0] for i in range(R) for j in range(C)])
    hcat = jnp.concatenate([out[d] for d in range(len(DIAGS))], 1)  # [B, R*C, H]
    return hcat[:, perm].reshape(B, R, C, H)


SCHEDULES = {"scan": slstm_scan, "diag_scan": slstm_diag_scan, "diag_loop": slstm_diag_loop}


def mcgsm_loglik(p, h, y):
    """h [N, H], y [N] -> log p(y | h) [N] (nats)."""
    fb = h @ p["features"]  # [N, F]
    a = -0.5 * (fb * fb) @ (p["weights"] ** 2).T  # [N, C]
    pred = h @ p["predictors"].T  # [N, C]
    ea = jnp.exp(p["scales"])  # [C, S]
    e = p["priors"] + ea * a[:, :, None]  # [N, C, S]
    r2 = 0.5 * (y[:, None] - pred) ** 2
    x = e + 0.5 * p["scales"] - HALF_LN_2PI - ea * r2[:, :, None]
    lse = lambda v: jax.nn.logsumexp(v.reshape(v.shape[0], -1), axis=1)  # noqa: E731
    return lse(x) - lse(e)


def init(seed=0):
    r = np.random.default_rng(seed)
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    layer = {
        "w": f32(r.uniform(-0.08, 0.08, (5 * H, N_IN + 2 * H))),
        "b": f32(np.zeros(5 * H)),
    }
    mcgsm = {
        "priors": f32(np.zeros((NC, NS))),
        "scales": f32(r.uniform(-1, 1, (NC, NS))),
        "weights": f32(r.uniform(0.01, 0.02, (NC, NF))),
        "features": f32(r.normal(0, 0.01, (H, NF))),
        "predictors": f32(r.normal(0, 0.1, (NC, H))),
    }
    x = f32(r.uniform(-1, 1, (B, R, C, N_IN)))
    y = f32(r.uniform(-1, 1, (B, R, C)))
    dh = f32(r.uniform(-1, 1, (B, R, C, H)))
    return layer, mcgsm, x, y, dh


def slstm_fwd_bwd(schedule):
    """jit(layer, x, dh) -> gradient of sum(h * dh) w.r.t. the layer's W and b."""
    f = SCHEDULES[schedule]

    def loss(layer, x, dh):
        return jnp.sum(f(layer["w"], layer["b"], x) * dh)

    return jax.jit(jax.grad(loss))


def train_step(schedule, lr=1e-3, momentum=0.9):
    """jit(params, velocity, x, y) -> (loss, params, velocity): mean NLL of all cells, its
    gradient, one SGD-momentum update (ride's training step)."""
    f = SCHEDULES[schedule]

    def loss(params, x, y):
        layer, mcgsm = params
        h = f(layer["w"], layer["b"], x).reshape(-1, H)
        return -jnp.mean(mcgsm_loglik(mcgsm, h, y.reshape(-1)))

    def step(params, vel, x, y):
        value, g = jax.value_and_grad(loss)(params, x, y)
        vel = jax.tree.map(lambda v, gi: momentum * v - lr * gi, vel, g)
        params = jax.tree.map(lambda p, v: p + v, params, vel)
        return value, params, vel

    return jax.jit(step)


def reference(w, b, x):
    """Plain NumPy per-cell raster scan (float64), to check the schedules."""
    w, b, x = (np.asarray(v, np.float64) for v in (w, b, x))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((B, R + 1, C + 1, H))  # one zero border row and column
    c = np.zeros_like(h)
    for i in range(R):
        for j in range(C):
            z = x[:, i, j] @ w[:, :N_IN].T + np.concatenate(
                [h[:, i + 1, j], h[:, i, j + 1]], -1) @ w[:, N_IN:].T + b
            g, ig, fr, fc, o = (z[:, k * H:(k + 1) * H] for k in range(5))
            cc = sig(ig) * np.tanh(g) + sig(fc) * c[:, i + 1, j] + sig(fr) * c[:, i, j + 1]
            c[:, i + 1, j + 1] = cc
            h[:, i + 1, j + 1] = np.tanh(sig(o) * cc)
    return h[:, 1:, 1:]


if __name__ == "__main__":
    layer, mcgsm, x, y, dh = init()
    want = reference(layer["w"], layer["b"], x)
    for name, f in SCHEDULES.items():
        got = np.asarray(jax.jit(f)(layer["w"], layer["b"], x))
        err = np.abs(got - want).max()
        print(f"{name}: max |h - reference| = {err:.2e}")
        assert err < 1e-4, name
