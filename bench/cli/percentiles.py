"""Percentiles and the one-line summary the CLI and dashboard benchmarks print."""


def pct(xs, p):
    """The p-th percentile of xs (nearest rank)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(name, xs):
    """Prints p50/p95 of durations in seconds and returns them in ms."""
    print(f"{name:<34} p50 {pct(xs, 50) * 1000:9.2f} ms   p95 {pct(xs, 95) * 1000:9.2f} ms   (n={len(xs)})")
    return {"p50_ms": pct(xs, 50) * 1000, "p95_ms": pct(xs, 95) * 1000, "n": len(xs)}
