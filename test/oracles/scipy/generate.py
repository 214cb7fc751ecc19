"""Generate the scipy test vectors for @tessera/stats (libs/stats/test/*.test.ts).

Run from the repository root:
    python3.11 -m venv test/oracles/scipy/.venv
    test/oracles/scipy/.venv/bin/pip install scipy numpy
    test/oracles/scipy/.venv/bin/python test/oracles/scipy/generate.py

Writes test/oracles/scipy/vectors.json. CI does not run Python: the tests read the committed JSON.

Large samples are not stored: they are described by a generator spec that the TypeScript tests
replay bit for bit (mulberry32 integers, combined with exact dyadic arithmetic only), so the JSON
stays small while n goes up to 20,000.
"""

import json
import math
import pathlib
import sys

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial import distance

M32 = 0xFFFFFFFF


def mulberry32(seed):
    """The same 32-bit generator as libs/stats/test/oracle.ts."""
    a = seed & M32

    def draw():
        nonlocal a
        a = (a + 0x6D2B79F5) & M32
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & M32
        t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32)) & M32
        return (t ^ (t >> 14)) & M32

    return draw


def sample(spec):
    """Replayable sample: ~normal (sum of 4 uniforms), scaled, shifted, optionally floored to a grid.

    Every operation is exact in binary64 (dyadic scale/shift, power-of-two grid), so the
    TypeScript replay produces identical numbers.
    """
    draw = mulberry32(spec["seed"])
    out = []
    for _ in range(spec["n"]):
        v = draw() + draw() + draw() + draw()  # integer < 2^34
        z = (v - 2.0**33) / 2.0**32
        x = z * spec["scale"] + spec["shift"]
        if spec["grid"]:
            x = math.floor(x * spec["grid"]) / spec["grid"]
        out.append(x)
    return out


def spec(seed, n, scale=1.0, shift=0.0, grid=0):
    return {"seed": seed, "n": n, "scale": scale, "shift": shift, "grid": grid}


def num(x):
    return float(x)


def ks_vectors():
    cases = []
    sizes = [
        (1, 1), (1, 5), (3, 4), (5, 7), (8, 8), (10, 10), (10, 15), (20, 35), (50, 50), (60, 140),
        (100, 80), (137, 251), (300, 1000), (500, 500), (1000, 1000), (999, 1001), (2000, 3000),
        (4096, 1024), (5000, 7500), (7000, 9999), (10000, 10000), (10000, 9000), (10001, 10001),
        (10001, 500), (12000, 20000), (20000, 20000), (15000, 40), (20000, 3), (11000, 11000),
        (19999, 17), (16384, 16384), (10500, 9800),
    ]
    shifts = [0.0, 0.015625, 0.0625, 0.25, 1.0]
    seed = 1000
    for n1, n2 in sizes:
        for shift in shifts:
            for grid in (0, 8):
                seed += 2
                a = spec(seed, n1, grid=grid)
                b = spec(seed + 1, n2, scale=1.25 if shift == 0.0625 else 1.0, shift=shift, grid=grid)
                res = stats.ks_2samp(sample(a), sample(b))
                cases.append({"a": a, "b": b, "statistic": num(res.statistic), "pValue": num(res.pvalue)})
    return cases


def ks_published():
    # scipy ks_2samp docs (0.9-1.3): np.random.seed(12345678); n1=200, n2=300
    np.random.seed(12345678)
    rvs1 = stats.norm.rvs(size=200, loc=0.0, scale=1)
    rvs2 = stats.norm.rvs(size=300, loc=0.5, scale=1.5)
    res = stats.ks_2samp(rvs1, rvs2)
    assert abs(res.statistic - 0.20833333333333337) < 1e-15, res
    return [{
        "source": "scipy ks_2samp docs, np.random.seed(12345678), norm(0,1) n=200 vs norm(0.5,1.5) n=300",
        "a": rvs1.tolist(), "b": rvs2.tolist(),
        "publishedStatistic": 0.20833333333333337,
        "statistic": num(res.statistic), "pValue": num(res.pvalue),
    }]


def kstwo_vectors():
    out = []
    ns = [1, 2, 3, 5, 10, 20, 50, 100, 139, 140, 141, 200, 500, 1000, 5000, 10000, 50000, 99999,
          100001, 250000, 500000, 1000000, 1500000]
    for n in ns:
        for x in [1e-4, 0.001, 0.003, 0.007, 0.01, 0.02, 0.035, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3,
                  0.45, 0.5, 0.6, 0.75, 0.9, 0.99]:
            out.append({"n": n, "x": x, "sf": num(stats.kstwo.sf(x, n))})
        # points around the method switches: n·x ≈ 1, n·x² ∈ {0.754693, 2.2, 4, 18, 370}, n·x^1.5 ≈ 1.4
        for target in [0.754693, 2.2, 4.0, 18.0, 370.0]:
            for f in (0.999, 1.001):
                x = math.sqrt(target * f / n)
                if x < 1:
                    out.append({"n": n, "x": x, "sf": num(stats.kstwo.sf(x, n))})
        for x in [0.75 / n, 1.0 / n, 1.5 / n, (1.4 / n) ** (2 / 3)]:
            if x < 1:
                out.append({"n": n, "x": x, "sf": num(stats.kstwo.sf(x, n))})
    return out


def gamma_vectors():
    out = []
    for a in [0.5, 1, 1.5, 2, 3.5, 5, 10, 25.5, 50, 100, 500, 2500]:
        for x in [1e-6, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 300, 1000, 3000]:
            out.append({"a": a, "x": x, "p": num(special.gammainc(a, x)), "q": num(special.gammaincc(a, x))})
    return out


def chi2_sf_vectors():
    out = []
    for dof in [1, 2, 3, 4, 5, 9, 10, 29, 50, 99, 500, 1000]:
        for x in [0.001, 0.1, 0.5, 1, 3.84, 6.63, 10, 20, 50, 100, 200, 500, 1000, 1500]:
            out.append({"dof": dof, "x": x, "sf": num(stats.chi2.sf(x, dof))})
    return out


def contingency_vectors():
    rng = np.random.default_rng(7)
    out = []
    for k in [2, 2, 2, 3, 4, 5, 8, 12, 20, 30, 50]:
        for scale in [5, 50, 1000, 100000]:
            p = rng.dirichlet(np.ones(k))
            q = p if rng.random() < 0.4 else rng.dirichlet(np.ones(k))
            ref = rng.multinomial(scale, p)
            cur = rng.multinomial(int(scale * rng.uniform(0.3, 3)), q)
            # a vanished and a new category now and then
            if k > 2 and rng.random() < 0.5:
                cur[0] = 0
            if k > 3 and rng.random() < 0.5:
                ref[1] = 0
            keep = (ref + cur) > 0
            table = np.vstack([ref[keep], cur[keep]])
            if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
                continue
            res = stats.chi2_contingency(table)
            uncorrected = stats.chi2_contingency(table, correction=False)
            out.append({
                "reference": ref.tolist(), "current": cur.tolist(),
                "statistic": num(res.statistic), "pValue": num(res.pvalue), "dof": int(res.dof),
                "cramersV": num(math.sqrt(uncorrected.statistic / table.sum())),
            })
    return out


def published_examples():
    """Examples printed in the scipy documentation (values asserted against this scipy too)."""
    ex = {}
    ex["chisquare"] = []
    for args, kwargs, stat, p in [
        (([16, 18, 16, 14, 12, 12],), {}, 2.0, 0.84914503608460956),
        (([16, 18, 16, 14, 12, 12],), {"f_exp": [16, 16, 16, 16, 16, 8]}, 3.5, 0.62338762774958223),
        (([16, 18, 16, 14, 12, 12],), {"ddof": 1}, 2.0, 0.7357588823428847),
        (([16, 18, 16, 14, 12, 12],), {"ddof": 2}, 2.0, 0.5724067044708798),
    ]:
        res = stats.chisquare(*args, **kwargs)
        assert abs(res.statistic - stat) < 1e-12 and abs(res.pvalue - p) < 1e-12, (args, kwargs, res)
        ex["chisquare"].append({"observed": args[0], "expected": kwargs.get("f_exp"), "ddof": kwargs.get("ddof", 0),
                                "statistic": stat, "pValue": p})
    ex["chi2Contingency"] = []
    for table, stat, p, dof in [
        ([[10, 10, 20], [20, 20, 20]], 2.7777777777777777, 0.24935220877729619, 2),
        ([[176, 230], [21035, 21018]], 6.892569132546561, 0.008655478161175739, 1),
    ]:
        res = stats.chi2_contingency(table)
        assert abs(res.statistic - stat) < 1e-9 and abs(res.pvalue - p) < 1e-12 and res.dof == dof, (table, res)
        ex["chi2Contingency"].append({"table": table, "statistic": stat, "pValue": p, "dof": dof})
    ex["jensenshannon"] = []
    for p, q, base, value in [
        ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], 2.0, 1.0),
        ([1.0, 0.0], [0.5, 0.5], None, 0.46450140402245893),
        ([1.0, 0.0, 0.0], [1.0, 0.0, 0.0], None, 0.0),
    ]:
        got = distance.jensenshannon(p, q, base)
        assert abs(got - value) < 1e-15, (p, q, got)
        ex["jensenshannon"].append({"p": p, "q": q, "base": base if base else math.e, "distance": value})
    ex["wasserstein"] = []
    for u, v, uw, vw, value in [
        ([0, 1, 3], [5, 6, 8], None, None, 5.0),
        ([0, 1], [0, 1], [3, 1], [2, 2], 0.25),
        ([3.4, 3.9, 7.5, 7.8], [4.5, 1.4], [1.4, 0.9, 3.1, 7.2], [3.2, 3.5], 4.0781331438047861),
    ]:
        got = stats.wasserstein_distance(u, v, uw, vw)
        assert abs(got - value) < 1e-12, (u, v, got)
        ex["wasserstein"].append({"u": u, "v": v, "uWeights": uw, "vWeights": vw, "distance": value})
    return ex


def binned_vectors():
    out = []
    seed = 50000
    for n_ref, n_cur, shift, scale, grid, bins in [
        (1000, 1000, 0.0, 1.0, 0, 10), (1000, 800, 0.1, 1.0, 0, 10), (5000, 5000, 0.5, 1.0, 0, 10),
        (200, 3000, 0.0, 2.0, 0, 10), (10000, 10000, 0.03125, 1.0, 0, 10), (101, 57, 1.0, 1.0, 0, 10),
        (2000, 2000, 0.0, 1.0, 2, 10), (2000, 1500, 0.25, 1.0, 1, 10), (3000, 3000, 0.0, 1.0, 0, 20),
        (3000, 3000, 0.125, 1.0, 0, 5), (15, 15, 0.0, 1.0, 0, 10), (500, 500, 3.0, 1.0, 0, 10),
    ]:
        seed += 2
        a = spec(seed, n_ref, grid=grid)
        b = spec(seed + 1, n_cur, scale=scale, shift=shift, grid=grid)
        ref = np.array(sample(a))
        cur = np.array(sample(b))
        qs = np.arange(1, bins) / bins
        edges = np.unique(np.quantile(ref, qs))  # numpy default: method="linear"
        r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
        c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
        rr = np.where(r == 0, 1e-4, r)
        cc = np.where(c == 0, 1e-4, c)
        psi = float(np.sum((cc - rr) * np.log(cc / rr)))
        js = float(distance.jensenshannon(r, c, base=2))
        w = float(stats.wasserstein_distance(ref, cur))
        out.append({
            "a": a, "b": b, "bins": bins, "edges": edges.tolist(), "referenceShares": r.tolist(),
            "currentShares": c.tolist(), "psi": psi, "js": js, "wasserstein": w,
            "normalizedWasserstein": w / max(float(np.std(ref)), 0.001),
        })
    return out


def main():
    out = {
        "generatedWith": {"scipy": scipy.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "published": published_examples(),
        "ksPublished": ks_published(),
        "ks": ks_vectors(),
        "kstwo": kstwo_vectors(),
        "gamma": gamma_vectors(),
        "chi2Sf": chi2_sf_vectors(),
        "contingency": contingency_vectors(),
        "binned": binned_vectors(),
    }
    path = pathlib.Path(__file__).with_name("vectors.json")
    path.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
    counts = {k: len(v) for k, v in out.items() if isinstance(v, list)}
    print(f"wrote {path}: {counts}")


if __name__ == "__main__":
    main()
