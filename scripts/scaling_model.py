#!/usr/bin/env python3
"""scaling_model.py: the cost model of docs/scaling.md, fitted to the runs of
jobs/scaling.sbatch, with its prediction of every measured point and its
extrapolation to 10M and 100M images on 8-256 ranks.

  scripts/scaling_model.py DATA_DIR [OUT_DIR]

DATA_DIR holds one or more runs' ranks.tsv and bytes.tsv (any file names
matching ranks*.tsv and bytes*.tsv, e.g. ranks-100k.tsv). Markdown tables go
to stdout; OUT_DIR (default DATA_DIR) gets the gnuplot data files
(measured-*.dat, model-*.dat) that scripts/scaling_plots.sh draws.

No numpy: a few least-squares fits of two or three terms, solved by hand.
Model per stage (x = the measured quantity, per rank, max over ranks):
  CPU seconds   = sum_i c_i * f_i(N, P)      (terms below; the sgemm term of
                  build uses the measured sgemm rate, not a fitted constant)
  peak MiB      = m0 + m1 * N + m2 * N / P   (m1: bytes every rank holds for
                  every node, m2: bytes per owned node)
Bytes moved are formulas of the sizes, not fits (see bytes_model).
"""
import glob
import math
import os
import sys

# Sizes of the synthetic catalogs (mmsage synth defaults, docs/synth.md)
D = 512          # input features (and the kNN space)
H = 128          # hidden units per half: embeddings are 2H = 256-d
K = 5            # visual neighbours per image
TRAIN_FRAC = 0.9  # images that become graph nodes (the train split)
DEG = 9.8        # undirected edges per node at 100k and 1M (measured: 900570 / 91975)


def tags(n):
    return min(20000, max(200, n // 50))


def nodes(n):
    return TRAIN_FRAC * n + tags(n)


def ivf_flops(n):
    """sgemm FLOPs of the IVF kNN (partition/knn_ivf.c): nlist = sqrt(rows),
    nprobe = max(4, nlist / 128); assignment to the lists and the probed lists."""
    ni = TRAIN_FRAC * n
    nlist = max(1, min(65536, round(math.sqrt(ni))))
    nprobe = min(nlist, max(4, (nlist + 127) // 128))
    return 2.0 * D * ni * (nlist + nprobe * ni / nlist)


QUERY_FIT = []
CORES = int(os.environ.get("MMS_CORES", "2"))  # cores of the machine the runs had

# Measured kernel rates (filled from the logs by main; defaults from 100k)
RATES = {"sgemm_gflops": 25.8, "memcpy_gbs": 4.8}

# CPU-second terms per stage: name -> (function of (n, p, steps), label)
TERMS = {
    "build": [(lambda n, p, s: 1.0, "1"),
              (lambda n, p, s: n / 1e6, "N (every rank: catalog scan; rank 0: CSR assembly)"),
              (lambda n, p, s: ivf_flops(n) / p / 1e12, "IVF TFLOP / P (sgemm)")],
    "partition": [(lambda n, p, s: DEG * nodes(n) / 1e6, "E"),
                  (lambda n, p, s: DEG * nodes(n) / 1e6 * math.log2(p), "E log2 P"),
                  (lambda n, p, s: (DEG * nodes(n) / 1e6) ** 1.5 * math.log2(p),
                   "E^1.5 log2 P (METIS and the 2-hop halos grew 17x for 10x the edges)")],
    "train": [(lambda n, p, s: n / 1e6, "N (every rank: graph checks, negative table, tag init)"),
              (lambda n, p, s: n / 1e6 / p, "N/P (shard, halo, walks)"),
              (lambda n, p, s: s / p, "steps/P (the batch's FLOPs)"),
              (lambda n, p, s: s * (1 - 1 / p), "steps (1 - 1/P) (exchanges, allreduce, waits)")],
    "embed": [(lambda n, p, s: 1.0, "1"),
              (lambda n, p, s: n / 1e6, "N (every rank: catalog and graph open)"),
              (lambda n, p, s: n / 1e6 / p, "N/P (layers 1 and 2 of owned + halo1)")],
}
MEM_TERMS = [(lambda n, p: 1.0, "MiB"), (lambda n, p: n / 1e6, "MiB per 1M images, every rank"),
             (lambda n, p: n / 1e6 / p, "MiB per 1M owned images")]


def build_fixed(n, p, s):
    """CPU seconds of build's sgemm: the IVF FLOPs over P ranks at the measured rate."""
    return ivf_flops(n) / p / (RATES["sgemm_gflops"] * 1e9)


def lstsq(rows, ys):
    """Least squares with non-negative coefficients (drop a term that comes out
    negative and refit); returns the coefficient list."""
    k = len(rows[0])
    active = list(range(k))
    while True:
        a = [[sum(r[i] * r[j] for r in rows) for j in active] for i in active]
        b = [sum(r[i] * y for r, y in zip(rows, ys)) for i in active]
        m = len(active)
        # Gaussian elimination with partial pivoting
        for c in range(m):
            piv = max(range(c, m), key=lambda r: abs(a[r][c]))
            a[c], a[piv] = a[piv], a[c]
            b[c], b[piv] = b[piv], b[c]
            if abs(a[c][c]) < 1e-300:
                a[c][c] = 1e-300
            for r in range(c + 1, m):
                f = a[r][c] / a[c][c]
                for j in range(c, m):
                    a[r][j] -= f * a[c][j]
                b[r] -= f * b[c]
        x = [0.0] * m
        for c in range(m - 1, -1, -1):
            x[c] = (b[c] - sum(a[c][j] * x[j] for j in range(c + 1, m))) / a[c][c]
        neg = [active[i] for i in range(m) if x[i] < 0]
        coef = [0.0] * k
        for i, c in enumerate(active):
            coef[c] = x[i]
        if not neg:
            return coef
        active = [c for c in active if c not in neg]
        if not active:
            return [0.0] * k


def lstsq_rel(rows, ys):
    """lstsq on relative errors: each point weighs the same whatever its size."""
    return lstsq([[v / y for v in r] for r, y in zip(rows, ys)], [1.0] * len(ys))


def read_tsv(pattern):
    rows = []
    for f in sorted(glob.glob(pattern)):
        with open(f) as fh:
            head = fh.readline().rstrip("\n").split("\t")
            for line in fh:
                v = line.rstrip("\n").split("\t")
                if len(v) == len(head):
                    rows.append(dict(zip(head, v)))
    return rows


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: scaling_model.py DATA_DIR [OUT_DIR]")
    data = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else data
    ranks = read_tsv(os.path.join(data, "ranks*.tsv"))
    byts = read_tsv(os.path.join(data, "bytes*.tsv"))
    steps = {}
    for b in byts:  # steps per run from the train rows' pairs: not logged; from the meta
        pass
    steps_of = {100000: 300, 1000000: 50}
    for f in glob.glob(os.path.join(data, "steps*.tsv")):
        for r in read_tsv(f):
            steps_of[int(r["images"])] = int(r["steps"])
    for f in glob.glob(os.path.join(data, "rates.tsv")):
        for r in read_tsv(f):
            RATES[r["rate"]] = float(r["value"])

    # (n, p, stage) -> max over ranks of cpu, wall, peak
    pts = {}
    for r in ranks:
        key = (int(r["images"]), int(r["ranks"]), r["stage"])
        cpu = float(r["user_s"]) + float(r["sys_s"])
        e = pts.setdefault(key, {"cpu": 0.0, "wall": 0.0, "mib": 0.0, "load": 0.0})
        e["cpu"] = max(e["cpu"], cpu)
        e["wall"] = max(e["wall"], float(r["seconds"]))
        e["mib"] = max(e["mib"], float(r["peak_mib"]))
        e["load"] = float(r["load1"])

    print("## Fitted constants\n")
    print("| stage | CPU-second terms (coefficient x term) | memory terms (MiB) |")
    print("|---|---|---|")
    fits, mfits = {}, {}
    # points left out of the fit, to test the model on what it has not seen:
    # MMS_HOLDOUT="1000000:4 ..." (images:ranks)
    held = {tuple(int(x) for x in h.split(":")) for h in os.environ.get("MMS_HOLDOUT", "").split()}
    for st in ["build", "partition", "train", "embed", "query"]:
        ks = sorted(k for k in pts if k[2] == st and (k[0], k[1]) not in held)
        if not ks:
            continue
        if st in TERMS:
            terms = TERMS[st]
            rows = [[f(n, p, steps_of.get(n, 0)) for f, _ in terms] for n, p, _ in ks]
            ys = [pts[k]["cpu"] for k in ks]
            fits[st] = lstsq_rel(rows, ys)
        mrows = [[f(n, p) for f, _ in MEM_TERMS] for n, p, _ in ks]
        mfits[st] = lstsq_rel(mrows, [pts[k]["mib"] for k in ks])
        cdesc = "; ".join(f"{c:.3g} x {lab}" for c, (_, lab) in zip(fits.get(st, []), TERMS.get(st, [])))
        if st == "build" and fits[st][2] > 0:
            cdesc += (f" (the sgemm term is {1e3 / fits[st][2]:.0f} GFLOP/s per rank in CPU time; "
                      f"plain sgemm peaks at {RATES['sgemm_gflops']:.0f})")
        if st == "query":
            cdesc = "(per query: see the latency model)"
        mdesc = ", ".join(f"{c:.3g} {lab}" for c, (_, lab) in zip(mfits[st], MEM_TERMS))
        print(f"| {st} | {cdesc} | {mdesc} |")

    def cpu_model(st, n, p):
        if st not in fits:
            return float("nan")
        v = sum(c * f(n, p, steps_of.get(n, 1000)) for c, (f, _) in zip(fits[st], TERMS[st]))
        return v

    def mem_model(st, n, p):
        return sum(c * f(n, p) for c, (f, _) in zip(mfits[st], MEM_TERMS))

    print("\n## Model against every measured point\n")
    print("CPU seconds and peak MiB are the largest over the ranks; 4 ranks run on 2 cores "
          "(oversubscribed); wall seconds are shown, not modelled (load 7-20 on 2 cores)."
          + (" Points marked held out were not used in the fit: the model predicts them." if held else "") + "\n")
    print("| images | ranks | stage | wall s | load | CPU s | model CPU s | error | peak MiB | model MiB | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    bad = []
    for k in sorted(pts, key=lambda k: (k[0], ["synth", "build", "partition", "train", "embed", "query"].index(k[2]) if k[2] in ["synth", "build", "partition", "train", "embed", "query"] else 9, k[1])):
        n, p, st = k
        if st == "synth":
            continue
        e = pts[k]
        mc = cpu_model(st, n, p)
        mm = mem_model(st, n, p)
        ec = (mc - e["cpu"]) / e["cpu"] * 100 if e["cpu"] > 0 and not math.isnan(mc) else float("nan")
        em = (mm - e["mib"]) / e["mib"] * 100
        flag = lambda x: f"**{x:+.0f} %**" if abs(x) > 25 else f"{x:+.0f} %"
        sc = "n/a" if math.isnan(ec) else flag(ec)
        smc = "n/a" if math.isnan(mc) else f"{mc:.1f}"
        nm = f"{n} (held out)" if (n, p) in held else f"{n}"
        print(f"| {nm} | {p} | {st} | {e['wall']:.1f} | {e['load']:.0f} | {e['cpu']:.1f} | {smc} | {sc} | {e['mib']:.0f} | {mm:.0f} | {flag(em)} |")
        if (not math.isnan(ec) and abs(ec) > 25) or abs(em) > 25:
            bad.append(k)
    print(f"\n{len(bad)} point(s) off by more than 25 %: {', '.join(f'{n}/{p}/{s}' for n, p, s in bad) or 'none'}")

    # bytes moved: measured (the stages' own lines) against the formulas
    bv = {}
    for b in byts:
        try:
            bv[(int(b["images"]), int(b["ranks"]), b["quantity"])] = float(b["value"])
        except ValueError:
            pass
    sizes = sorted({k[0] for k in bv})
    nparams = 2 * D * H + 2 * (2 * H) * H
    print("\n## Bytes moved\n")
    print("Partition: edge cut and halo of METIS against a hash partition (the same node "
          "weights); train: the halo rows fetched once (alltoallv), the parameter gradient "
          "allreduced per step (model: 4 x (2DH + 4H^2) bytes), the z / dL/dz exchange per step; "
          "embed: the same halo fetch plus the tag rows gathered on rank 0 (model: T x 2H x 4 x 2 + 8T).\n")
    print("| images | ranks | edges | METIS cut | hash cut | METIS halo nodes (all parts) | hash halo nodes | halo bytes (train, once) | allreduce B/step (model) | exchange B/step | embed tag gather B (model) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for p in sorted({k[1] for k in bv if k[0] == n}):
            g = lambda q: bv.get((n, p, q), float("nan"))
            e = g("edges")
            cut = lambda q: f"{g(q):,.0f} ({100 * g(q) / e:.1f} %)" if e == e and e > 0 else "-"
            ar = g("allreduce_bytes_per_step")
            tg = tags(n) * 2 * H * 4 * 2 + 8 * tags(n) if p > 1 else 0
            print(f"| {n} | {p} | {e:,.0f} | {cut('metis_edge_cut')} | {cut('hash_edge_cut')} | "
                  f"{g('metis_halo_nodes'):,.0f} | {g('hash_halo_nodes'):,.0f} | {g('halo_bytes'):,.0f} | "
                  f"{ar:,.0f} ({4 * nparams:,}) | {g('exchange_bytes_per_step'):,.0f} | {tg:,} |")
    print("\n## Queries (bench_query at R ranks, search layout)\n")
    print("| images | ranks | single p50 ms | single p99 ms | fused QPS, 1 / 64 per call | tags-only QPS, 1 / 64 per call |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for p in sorted({k[1] for k in bv if k[0] == n and (n, k[1], "single_p50") in bv}):
            g = lambda q: bv.get((n, p, q), float("nan"))
            print(f"| {n} | {p} | {g('single_p50'):.2f} | {g('single_p99'):.2f} | "
                  f"{g('batch1_fused_qps'):.0f} / {g('batch64_fused_qps'):.0f} | "
                  f"{g('batch1_tags_qps'):.0f} / {g('batch64_tags_qps'):.0f} |")
    qk = [(n, p) for (n, p, q) in bv if q == "single_p50"]
    if len(qk) >= 2:
        # wall time, not CPU: 4 ranks on this machine's 2 cores scan at the speed of 2
        qf = lstsq_rel([[1.0, n / 1e6 / min(p, CORES), math.log2(p)] for n, p in qk], [bv[(n, p, "single_p50")] for n, p in qk])
        print(f"\nLatency model (single fused query, p50, wall time): {qf[0]:.2f} ms + {qf[1]:.2f} ms per 1M images "
              f"per core scanning (min(P, {CORES}): 4 ranks share 2 cores) + {qf[2]:.2f} ms x log2 P (the two rounds' "
              f"broadcast and gathers):\n")
        print("| images | ranks | measured p50 ms | model ms | error |")
        print("|---|---|---|---|---|")
        for n, p in sorted(qk):
            m = qf[0] + qf[1] * n / 1e6 / min(p, CORES) + qf[2] * math.log2(p)
            x = bv[(n, p, "single_p50")]
            err = (m - x) / x * 100
            print(f"| {n} | {p} | {x:.2f} | {m:.2f} | {'**' if abs(err) > 25 else ''}{err:+.0f} %{'**' if abs(err) > 25 else ''} |")
        QUERY_FIT[:] = qf

    # gnuplot data: measured and model, per stage, CPU s and MiB against P
    os.makedirs(out, exist_ok=True)
    for st in ["build", "partition", "train", "embed", "query"]:
        with open(os.path.join(out, f"measured-{st}.dat"), "w") as f:
            f.write("# images ranks cpu_s wall_s peak_mib model_cpu_s model_mib\n")
            for n in sorted({k[0] for k in pts}):
                for p in [1, 2, 4]:
                    e = pts.get((n, p, st))
                    m = f"{cpu_model(st, n, p):.3f} {mem_model(st, n, p):.1f}" if st in mfits else "? ?"
                    m = m.replace("nan", "?")
                    if e:
                        f.write(f"{n} {p} {e['cpu']:.3f} {e['wall']:.3f} {e['mib']:.1f} {m}\n")
                    else:
                        f.write(f"{n} {p} ? ? ? {m}\n")
                f.write("\n\n")

    print("\n## Extrapolation (model; every term as fitted, no fix applied)\n")
    print("| images | ranks | build s | partition s (1 process) | train s (setup + 1000 steps) | embed s | build MiB/rank | partition MiB | train MiB/rank | embed MiB/rank |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with open(os.path.join(out, "extrapolation.dat"), "w") as f:
        f.write("# images ranks build_s partition_s train_s embed_s build_mib partition_mib train_mib embed_mib\n")
        for n in [10_000_000, 100_000_000]:
            for p in [8, 32, 128, 256]:
                v = [cpu_model(s, n, p) for s in ["build", "partition", "train", "embed"]]
                m = [mem_model(s, n, p) for s in ["build", "partition", "train", "embed"]]
                f.write(f"{n} {p} " + " ".join(f"{x:.1f}" for x in v + m) + "\n")
                print(f"| {n / 1e6:.0f}M | {p} | " + " | ".join(f"{x:,.0f}" for x in v) + " | " +
                      " | ".join(f"{x:,.0f}" for x in m) + " |")
            f.write("\n\n")


if __name__ == "__main__":
    main()
