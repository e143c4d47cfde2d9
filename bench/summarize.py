#!/usr/bin/env python3
"""summarize.py - medians and ratios from run_echo.sh's raw measurements.

usage: summarize.py RAW.csv OUTDIR [BASE_PEER]

RAW.csv has one row per loadgen run (see run_echo.sh).  Writes:
  OUTDIR/results.csv    one row per (size, conns, peer): medians, min, max,
                        and ratios to BASE_PEER (default libuv) of round trips
                        per second and of server CPU per round trip
  OUTDIR/results.md     the same as Markdown tables, for bench/README.md
  OUTDIR/plot_SIZE.dat  gnuplot input: one column per peer, one row per N
Runs that reported errors are left out of the medians and counted.
Standard library only.
"""
import csv
import os
import statistics
import sys


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0):
    if x is None:
        return "na"
    return ("%%.%df" % nd) % x


def human_size(n):
    return "%d KiB" % (n // 1024) if n >= 1024 and n % 1024 == 0 else "%d B" % n


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    raw, outdir = sys.argv[1], sys.argv[2]
    base = sys.argv[3] if len(sys.argv) > 3 else "libuv"
    cells = {}
    peers = []
    with open(raw, newline="") as f:
        for row in csv.DictReader(f):
            key = (int(row["size"]), int(row["conns"]), row["peer"])
            if row["peer"] not in peers:
                peers.append(row["peer"])
            c = cells.setdefault(key, {"rtt": [], "cpu": [], "p50": [], "p99": [],
                                       "bad": 0})
            if row["errors"] != "0" or fnum(row["rtt_per_s"]) is None:
                c["bad"] += 1
                continue
            c["rtt"].append(fnum(row["rtt_per_s"]))
            c["cpu"].append(fnum(row["srv_cpu_us_per_rt"]))
            c["p50"].append(fnum(row["p50_us"]))
            c["p99"].append(fnum(row["p99_us"]))
    sizes = sorted({k[0] for k in cells})
    conns = sorted({k[1] for k in cells})

    summary = {}
    for key, c in cells.items():
        summary[key] = {
            "n": len(c["rtt"]), "bad": c["bad"],
            "rtt": med(c["rtt"]),
            "rtt_min": min(c["rtt"]) if c["rtt"] else None,
            "rtt_max": max(c["rtt"]) if c["rtt"] else None,
            "cpu": med(c["cpu"]), "p50": med(c["p50"]), "p99": med(c["p99"]),
        }
    for (size, n, peer), s in summary.items():
        b = summary.get((size, n, base))
        s["rtt_ratio"] = (s["rtt"] / b["rtt"]) if b and b["rtt"] and s["rtt"] else None
        s["cpu_ratio"] = (s["cpu"] / b["cpu"]) if b and b["cpu"] and s["cpu"] else None

    with open(os.path.join(outdir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "conns", "peer", "runs", "failed_runs", "rtt_per_s_median",
                    "rtt_per_s_min", "rtt_per_s_max", "rtt_ratio_vs_" + base,
                    "srv_cpu_us_per_rt_median", "cpu_ratio_vs_" + base,
                    "p50_us_median", "p99_us_median"])
        for size in sizes:
            for n in conns:
                for peer in peers:
                    s = summary.get((size, n, peer))
                    if not s:
                        continue
                    w.writerow([size, n, peer, s["n"], s["bad"], fmt(s["rtt"]),
                                fmt(s["rtt_min"]), fmt(s["rtt_max"]),
                                fmt(s["rtt_ratio"], 2), fmt(s["cpu"], 2),
                                fmt(s["cpu_ratio"], 2), fmt(s["p50"], 1), fmt(s["p99"], 1)])

    with open(os.path.join(outdir, "results.md"), "w") as f:
        for size in sizes:
            f.write("\n**%s messages**: median round trips/s (ratio to %s) | "
                    "server CPU us per round trip (ratio to %s)\n\n" % (human_size(size), base, base))
            f.write("| peer | " + " | ".join("N=%d" % n for n in conns) + " |\n")
            f.write("|---|" + "---|" * len(conns) + "\n")
            for peer in peers:
                cols = []
                for n in conns:
                    s = summary.get((size, n, peer))
                    if not s or s["rtt"] is None:
                        cols.append("failed" if s and s["bad"] else "-")
                        continue
                    txt = "%s (%s) \\| %s (%s)" % (
                        fmt(s["rtt"] / 1000.0, 1) + "k", fmt(s["rtt_ratio"], 2),
                        fmt(s["cpu"], 1), fmt(s["cpu_ratio"], 2))
                    if s["bad"]:
                        txt += " [%d failed]" % s["bad"]
                    cols.append(txt)
                f.write("| %s | %s |\n" % (peer, " | ".join(cols)))

    for size in sizes:
        with open(os.path.join(outdir, "plot_%d.dat" % size), "w") as f:
            f.write("conns " + " ".join(peers) + "\n")
            for n in conns:
                vals = []
                for peer in peers:
                    s = summary.get((size, n, peer))
                    vals.append(fmt(s["rtt"] / 1000.0, 2) if s and s["rtt"] else "NaN")
                f.write("%d %s\n" % (n, " ".join(vals)))
        with open(os.path.join(outdir, "cpu_%d.dat" % size), "w") as f:
            f.write("conns " + " ".join(peers) + "\n")
            for n in conns:
                vals = []
                for peer in peers:
                    s = summary.get((size, n, peer))
                    vals.append(fmt(s["cpu"], 2) if s and s["cpu"] else "NaN")
                f.write("%d %s\n" % (n, " ".join(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
