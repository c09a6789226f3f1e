"""ride against the JAX peer, interleaved in one run (`make bench-peers`).

Each round measures ride's kernel (`ride bench --json`, 2 threads) and then every JAX schedule
of the same work, so that both see the same machine state; the best of the rounds is kept for
each. JAX functions are compiled (and run once) before the first round: compile time is not
measured. Writes one CSV row per (kernel, implementation) and prints the ratios.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

import ride_jax as peer

KERNELS = {
    # ride kernel name -> peer factory, and how the peer is called
    "slstm_fwd_bwd_l1_h64": "slstm",
    "train_step_l1_h64": "train_step",
}


def ride_once(ride, kernel, min_time):
    out = subprocess.run(
        [ride, "bench", "--threads", "2", "--filter", kernel, "--json",
         "--min-time", str(min_time), "--out", os.environ.get("TMPDIR", "/tmp") + "/ride-peers"],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        row = json.loads(line)
        if row.get("kernel") == kernel:
            return row["cells_per_s"], row["share_of_peak"]
    sys.exit(f"ride bench printed no row for {kernel}")


def peer_runner(kind, schedule):
    layer, mcgsm, x, y, dh = peer.init()
    if kind == "slstm":
        f = peer.slstm_fwd_bwd(schedule)
        return lambda: jax.block_until_ready(f(layer, x, dh))
    step = peer.train_step(schedule)
    state = {"params": (layer, mcgsm), "vel": jax.tree.map(np.zeros_like, (layer, mcgsm))}

    def run():
        _, state["params"], state["vel"] = step(state["params"], state["vel"], x, y)
        jax.block_until_ready(state["params"])

    return run


def time_median(run, min_time):
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ride", default="target/release/ride")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--out", default="results/bench/peers.csv")
    ap.add_argument("--commit", default="unknown")
    a = ap.parse_args()
    cells = peer.B * peer.R * peer.C
    runners = {}
    for kernel, kind in KERNELS.items():
        for schedule in peer.SCHEDULES:
            t = time.perf_counter()
            run = peer_runner(kind, schedule)
            run()  # compile
            run()
            print(f"compiled {kind} {schedule} in {time.perf_counter() - t:.1f} s", flush=True)
            runners[(kernel, schedule)] = run
    best = {}
    for rnd in range(a.rounds):
        for kernel in KERNELS:
            cps, share = ride_once(a.ride, kernel, a.min_time)
            best.setdefault((kernel, "ride"), []).append((cps, share))
            print(f"round {rnd + 1}: ride {kernel}: {cps:,.0f} cells/s ({100 * share:.1f} % of peak)",
                  flush=True)
            for schedule in peer.SCHEDULES:
                cps = cells / time_median(runners[(kernel, schedule)], a.min_time)
                best.setdefault((kernel, "jax_" + schedule), []).append((cps, None))
                print(f"round {rnd + 1}: jax {schedule} {kernel}: {cps:,.0f} cells/s", flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kernel", "implementation", "best_cells_per_s", "rounds_cells_per_s",
                    "ride_share_of_peak", "ride_over_this", "ride_over_best_peer", "rounds",
                    "threads", "commit", "jax_version", "cells_per_run"])
        for kernel in KERNELS:
            ours = max(c for c, _ in best[(kernel, "ride")])
            share = max(s for _, s in best[(kernel, "ride")])
            peers = {k[1]: max(c for c, _ in v) for k, v in best.items()
                     if k[0] == kernel and k[1] != "ride"}
            best_peer = max(peers.values())
            for impl in ["ride", *peers]:
                vals = [c for c, _ in best[(kernel, impl)]]
                w.writerow([kernel, impl, f"{max(vals):.0f}",
                            " ".join(f"{v:.0f}" for v in vals),
                            f"{share:.4f}" if impl == "ride" else "",
                            f"{ours / max(vals):.3f}", f"{ours / best_peer:.3f}", a.rounds, 2,
                            a.commit, jax.__version__, cells])
            best_name = max(peers, key=peers.get)
            print(f"{kernel}: ride {ours:,.0f} cells/s, best peer {best_name} "
                  f"{best_peer:,.0f} cells/s: ratio {ours / best_peer:.2f}x")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
