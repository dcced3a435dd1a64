#!/usr/bin/python3
"""bench/peers_ann.py: faiss IVF and hnswlib on the vectors an mmsage index
searches, for side-by-side figures (issue 13). Not a dependency of mmsage;
run with Debian's python3 after `scripts/setup.sh --peers`.

    /usr/bin/python3 bench/peers_ann.py --index I --queries-dir Q [--threads 2]

I is an index written by `mmsage embed`; its shards' rows are the base:
`vis` (the kNN space the NEIGHBORS round searches) and `emb` (the embeddings
the SEARCH round searches). Q holds the query vectors bench_query sent in its
rounds (`bench_query --dump-queries Q`: neighbors.npy, search.npy), so every
method answers the same questions. bench/side_by_side.sh runs it between
two bench_query runs. For each space and method the script
prints recall@k against the exact top-k (faiss IndexFlatIP), single-query
p50/p99 (one query per call), batched queries/s (all queries in one call,
--threads threads) and the index's memory per image (its serialised size for
faiss, the library's own size formula for hnswlib, both with the vectors).
The fused figure holds both rounds: a query searches vis, then emb.
Results also go to --json. Nothing here is asserted.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np


def load_space(index, name):
    parts = []
    for d in sorted(glob.glob(os.path.join(index, "shard-*")), key=lambda p: int(p.rsplit("-", 1)[1])):
        f = os.path.join(d, name + ".npy")
        if not os.path.exists(f):
            sys.exit(f"error: {f}: missing (is {index} an mmsage index?)")
        parts.append(np.load(f, mmap_mode="r"))
    if not parts:
        sys.exit(f"error: {index}: no shard-*/ directories")
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)


def recall(found, truth, k):
    hit = 0
    for a, b in zip(found, truth):
        hit += len(set(int(x) for x in a[:k] if x >= 0) & set(int(x) for x in b[:k]))
    return hit / (k * len(truth))


def timed_single(search, Q, reps):
    lat = []
    for i in range(min(reps, len(Q))):
        t = time.perf_counter()
        search(Q[i:i + 1])
        lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(0.99 * len(lat)))]


def timed_batch(search, Q):
    t = time.perf_counter()
    out = search(Q)
    return len(Q) / (time.perf_counter() - t), out


def bench_space(name, X, Q, args, faiss, hnswlib):
    n, d = X.shape
    k = args.k
    rows = []
    print(f"\n## {name}: {n} x {d} base, {len(Q)} queries, k {k}, {args.threads} thread(s)", flush=True)
    flat = faiss.IndexFlatIP(d)
    flat.add(X)
    _, truth = flat.search(Q, k)
    del flat
    nlist = args.nlist or int(2 ** round(np.log2(4 * np.sqrt(n))))
    for kind in args.faiss:
        quant = faiss.IndexFlatIP(d)
        if kind == "flat":
            ix = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            ix = faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                               faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(1)
        sample = X[rng.choice(n, min(n, 64 * nlist), replace=False)]
        t = time.perf_counter()
        ix.train(sample)
        ix.add(X)
        build = time.perf_counter() - t
        mem = len(faiss.serialize_index(ix)) / n
        for nprobe in args.nprobe:
            ix.nprobe = nprobe
            search = lambda q: ix.search(q, k)[1]
            qps, found = timed_batch(search, Q)
            p50, p99 = timed_single(search, Q, args.single)
            r = dict(space=name, method=f"faiss IVF{nlist},{'Flat' if kind == 'flat' else 'SQ8'}",
                     knob=f"nprobe {nprobe}", recall=recall(found, truth, k), p50_ms=p50, p99_ms=p99,
                     qps=qps, bytes_per_image=mem, build_s=build)
            rows.append(r)
            print_row(r)
        del ix
    if hnswlib is not None and args.hnsw_m:
        ix = hnswlib.Index(space="ip", dim=d)
        ix.init_index(max_elements=n, M=args.hnsw_m, ef_construction=args.hnsw_efc, random_seed=1)
        ix.set_num_threads(args.threads)
        t = time.perf_counter()
        ix.add_items(X, np.arange(n))
        build = time.perf_counter() - t
        # hnswlib's layout: per element d floats + label + level-0 links (2M + 1 ints);
        # upper levels hold about 1/M of the elements with M + 1 links each
        mem = d * 4 + 8 + (2 * args.hnsw_m + 1) * 4 + (args.hnsw_m + 1) * 4 / args.hnsw_m
        for ef in args.ef:
            ix.set_ef(max(ef, k))
            search = lambda q: ix.knn_query(q, k=k, num_threads=args.threads)[0]
            qps, found = timed_batch(search, Q)
            ix.set_num_threads(1)
            p50, p99 = timed_single(lambda q: ix.knn_query(q, k=k, num_threads=1)[0], Q, args.single)
            ix.set_num_threads(args.threads)
            r = dict(space=name, method=f"hnswlib M{args.hnsw_m} efC{args.hnsw_efc}", knob=f"ef {ef}",
                     recall=recall(found, truth, k), p50_ms=p50, p99_ms=p99, qps=qps,
                     bytes_per_image=mem, build_s=build)
            rows.append(r)
            print_row(r)
        del ix
    return rows


def print_row(r):
    print(f"| {r['space']} | {r['method']} | {r['knob']} | {r['recall']:.4f} | {r['p50_ms']:.3f} | "
          f"{r['p99_ms']:.3f} | {r['qps']:.0f} | {r['bytes_per_image']:.0f} | {r['build_s']:.1f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", required=True, help="mmsage index directory (shard-*/vis.npy, emb.npy)")
    ap.add_argument("--queries-dir", required=True, help="bench_query --dump-queries output (neighbors.npy, search.npy)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists (0: 4 sqrt(n) rounded to a power of 2)")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--faiss", nargs="*", default=["flat", "sq8"], choices=["flat", "sq8"])
    ap.add_argument("--hnsw-m", type=int, default=16, help="0: skip hnswlib")
    ap.add_argument("--hnsw-efc", type=int, default=100)
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    ap.add_argument("--spaces", nargs="+", default=["vis", "emb"], choices=["vis", "emb"])
    ap.add_argument("--json", default="", help="write the rows here")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import faiss
    except ImportError:
        sys.exit("error: no faiss: run scripts/setup.sh --peers and use /usr/bin/python3")
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
        print("note: no hnswlib (scripts/setup.sh --peers); skipped", file=sys.stderr)
    faiss.omp_set_num_threads(args.threads)
    qfile = {"vis": "neighbors.npy", "emb": "search.npy"}
    print(f"cpu: {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}; "
          f"faiss {faiss.__version__}; load {open('/proc/loadavg').read().split()[:3]}")
    print("| space | method | knob | recall@k | p50 ms | p99 ms | batched q/s | bytes/image | build s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for sp in args.spaces:
        X = load_space(args.index, sp)
        qf = os.path.join(args.queries_dir, qfile[sp])
        Q = np.ascontiguousarray(np.load(qf), dtype=np.float32)
        if Q.ndim != 2 or Q.shape[1] != X.shape[1]:
            sys.exit(f"error: {qf}: shape {Q.shape} does not match the {sp} rows' width {X.shape[1]}")
        rows += bench_space(sp, X, Q, args, faiss, hnswlib)
        del X
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
