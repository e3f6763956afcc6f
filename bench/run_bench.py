#!/usr/bin/python3
"""`make bench` (issue 16): every throughput, time-to-detect, shrink and scaling figure, written
to bench/results/<commit>.json and <commit>.md; the Markdown table is printed too.

Figures are per CPU-second where the issue asks for throughput: the machine is shared, so wall
time depends on its load. Each throughput figure is min/median/max over RUNS runs.

  run_bench.py --build BUILD [--out bench/results] [--runs 3] [--e2e-seconds 10]
               [--ttd-seeds 5] [--ttd-seconds 5] [--quick]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def fail(msg):
    print("run_bench: " + msg, file=sys.stderr)
    sys.exit(2)


def run_child(cmd, timeout=None):
    """Runs cmd; returns (exit code, stdout, its own rusage: CPU and max RSS)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return p.returncode, out.read().decode(errors="replace"), ru


def last_json(text):
    """The JSON document in a tool's stdout (libkvm may print a line before it)."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
    return None


def spread(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v), "values": v}


def fmt(x, digits=0):
    if x is None:
        return "-"
    if x == float("inf"):
        return "> budget"
    if isinstance(x, dict):
        return "%s [%s..%s]" % (fmt(x["median"], digits), fmt(x["min"], digits), fmt(x["max"], digits))
    return "{:,.{d}f}".format(x, d=digits)


def commit_id():
    try:
        rev = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".", ":!bench/results"], cwd=ROOT).returncode
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------- throughput

def gbench(tool, filt, runs, min_time):
    """Google Benchmark items/s (CPU time) per benchmark name: min/median/max over `runs`."""
    code, out, _ = run_child([tool, "--benchmark_filter=" + filt, "--benchmark_format=json",
                              "--benchmark_repetitions=%d" % runs, "--benchmark_min_time=%g" % min_time,
                              "--benchmark_enable_random_interleaving=true"])
    if code != 0:
        fail("%s exited %d" % (tool, code))
    per = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"]
        per.setdefault(name, {"items_per_second": [], "cpu_ns": [], "counters": {}})
        per[name]["items_per_second"].append(b.get("items_per_second"))
        per[name]["cpu_ns"].append(b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]])
        for k in ("violations", "dead_td_ops", "ops_per_iteration"):
            if k in b:
                per[name]["counters"][k] = b[k]
    return {n: {"items_per_second": spread(v["items_per_second"]), "cpu_ns": spread(v["cpu_ns"]),
                "counters": v["counters"]} for n, v in per.items()}


def e2e(tdxhp, target, seconds, seeds, tmp):
    rows = []
    for seed in seeds:
        code, out, ru = run_child([tdxhp, "run", "--target", target, "--seconds", str(seconds), "--seed", str(seed),
                                   "--json", "--no-progress", "--out", os.path.join(tmp, "e2e-%s-%d" % (target, seed))])
        j = last_json(out)
        if j is None:
            rows.append({"seed": seed, "exit": code, "error": "no JSON on stdout"})
            continue
        t = j["totals"]
        rows.append({"seed": seed, "exit": code, "verdict": j["verdict"], "steps": t["steps"], "cases": t["cases"],
                     "seconds": t["seconds"], "cpu_seconds": t.get("cpu_seconds"),
                     "steps_per_sec": t["ops_per_sec"], "steps_per_cpu_sec": t.get("steps_per_cpu_sec"),
                     "max_rss_kb": ru.ru_maxrss,
                     "ran": [p["id"] for p in j["properties"] if p["status"] != "skip"]})
    ok = [r for r in rows if "steps" in r]
    return {"runs": rows, "steps_per_cpu_sec": spread([r["steps_per_cpu_sec"] for r in ok]),
            "steps_per_sec": spread([r["steps_per_sec"] for r in ok])}


def kvm_vs_raw(build, tdxhp, seconds, runs, tmp):
    raw_tool = os.path.join(build, "bench", "tdxhp_kvm_raw")
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return {"skip": "no usable /dev/kvm"}
    if not os.path.exists(raw_tool):
        return {"skip": "tdxhp_kvm_raw not built (no libkvm-selftests)"}
    raw, target = [], []
    for i in range(runs):  # interleaved, so both see the same load
        code, out, _ = run_child([raw_tool, str(seconds)])
        j = last_json(out)
        if code != 0 or j is None or "skip" in (j or {}):
            return {"skip": "raw loop: " + ((j or {}).get("skip") or "exit %d" % code)}
        raw.append(j)
        target.append(e2e(tdxhp, "kvm", seconds, [i + 1], tmp)["runs"][0])
    ok = [t for t in target if t.get("steps")]
    if not ok:
        return {"skip": "tdxhp run --target kvm ran no step", "target_runs": target}
    ratio = [t["steps_per_sec"] / r["steps_per_sec"] for t, r in zip(target, raw) if t.get("steps")]
    return {"raw_runs": raw, "target_runs": target,
            "raw_steps_per_sec": spread([r["steps_per_sec"] for r in raw]),
            "raw_steps_per_cpu_sec": spread([r["steps_per_cpu_sec"] for r in raw]),
            "target_steps_per_sec": spread([t["steps_per_sec"] for t in ok]),
            "target_steps_per_cpu_sec": spread([t["steps_per_cpu_sec"] for t in ok]),
            "ratio_wall": spread(ratio)}


# ----------------------------------------------------------------------------- time to detect

def time_to_detect(build, seeds, seconds, tmp):
    tool = os.path.join(build, "bench", "tdxhp_detect")
    out = {}
    for gen in ("default", "uniform"):
        per_seed = []
        for seed in seeds:
            code, text, _ = run_child([tool, "--generator", gen, "--seed", str(seed), "--seconds-per-mutant",
                                       str(seconds), "--clean-seconds", "1", "--fixtures",
                                       os.path.join(ROOT, "fixtures", "cases"),
                                       "--out", os.path.join(tmp, "ttd-%s-%d" % (gen, seed))])
            j = last_json(text)
            if j is None:
                fail("tdxhp_detect --generator %s --seed %d exited %d without JSON" % (gen, seed, code))
            per_seed.append(j)
        out[gen] = per_seed
    rows = {}
    for gen, runs in out.items():
        for seed, j in zip(seeds, runs):
            for r in j["mutants"]:
                d = rows.setdefault(r["id"], {}).setdefault(gen, {"cases": [], "cpu": [], "killed": 0, "shrunk": [],
                                                                  "fixture": r["fixture_steps"], "by": set()})
                if r["killed"]:
                    d["killed"] += 1
                    d["cases"].append(r["cases"])
                    d["cpu"].append(r["cpu_seconds"])
                    d["shrunk"].append(r["shrunk_steps"])
                    d["by"].add("%s %s" % (r["property"], r["invariant"]))
                else:  # censored at the budget: counted as the budget for the median
                    d["cases"].append(None)
                    d["cpu"].append(None)
    n = len(seeds)
    table = []
    for mid, g in sorted(rows.items()):
        row = {"mutant": mid}
        for gen in ("default", "uniform"):
            d = g.get(gen)
            if not d:
                continue
            cpu = [c if c is not None else float("inf") for c in d["cpu"]]
            cases = [c if c is not None else float("inf") for c in d["cases"]]
            row[gen] = {"killed": "%d/%d" % (d["killed"], n), "median_cpu_seconds": statistics.median(cpu),
                        "median_cases": statistics.median(cases), "cpu_seconds": d["cpu"], "cases": d["cases"],
                        "killed_by": sorted(d["by"])}
            if gen == "default":
                row["shrunk_steps"] = d["shrunk"]
                row["fixture_steps"] = d["fixture"]
        dm, um = row["default"]["median_cpu_seconds"], row.get("uniform", {}).get("median_cpu_seconds")
        # A median past the budget is a lower bound: the ratio is then "at least" (budget / default).
        row["ratio_cpu"] = None
        if um is not None and dm not in (0, float("inf")):
            row["ratio_cpu"] = um / dm if um != float("inf") else seconds / dm
            row["ratio_is_lower_bound"] = um == float("inf")
        table.append(row)
    # The hardest third: the mutants with the largest default-generator medians.
    hard = sorted(table, key=lambda r: -r["default"]["median_cpu_seconds"])[: max(1, round(len(table) / 3))]
    # Sums of medians; a median past the budget counts as the budget (so uniform's is a lower bound).
    capped = lambda x: min(x, seconds)
    sd = sum(capped(r["default"]["median_cpu_seconds"]) for r in hard)
    su = sum(capped(r.get("uniform", {}).get("median_cpu_seconds", 0)) for r in hard)
    return {"seeds": seeds, "seconds_per_mutant": seconds, "rows": table,
            "hardest_third": {"mutants": [r["mutant"] for r in hard], "default_cpu_seconds": sd,
                              "uniform_cpu_seconds": su, "ratio": su / sd if sd else None},
            "clean": {gen: [j["clean"]["verdict"] for j in runs] for gen, runs in out.items()}}


# ----------------------------------------------------------------------------- RSS vs slot size

def rss_vs_slot(tdxhp, tmp):
    """Max RSS of `tdxhp replay` of a case on one slot of each size: prefault 4 blocks, write the
    last page, convert the whole slot shared and back, punch it all."""
    out = []
    for name, npages in (("2M", 512), ("1G", 1 << 18), ("64G", 1 << 24), ("16T", 1 << 32),
                         ("~4P (max)", (1 << 40) - 0x40000)):
        base = 0x40000
        case = {"format": 1, "id": "rss-" + name.split()[0], "description": "bench: RSS against slot size",
                "config": {"slots": [{"id": 0, "gfn": hex(base), "npages": npages, "gmem_offset": "0x0"}],
                           "backing": "hugetlb-2m", "attr_mode": "per-vm"},
                "ops": [{"op": "prefault", "gfn": hex(base), "npages": min(npages, 2048)},
                        {"op": "access", "gfn": hex(base + npages - 1), "write": True, "value": "0x1"},
                        {"op": "convert", "gfn": hex(base), "npages": npages, "to": "shared"},
                        {"op": "convert", "gfn": hex(base), "npages": npages, "to": "private"},
                        {"op": "punch", "gfn": hex(base), "npages": npages}]}
        path = os.path.join(tmp, "rss-%d.json" % npages)
        with open(path, "w") as f:
            json.dump(case, f)
        code, text, ru = run_child([tdxhp, "replay", path, "--target", "sim"])
        out.append({"slot": name, "npages": npages, "exit": code, "max_rss_kb": ru.ru_maxrss,
                    "verdict": "pass" if code == 0 else "exit %d" % code})
    return out


# ----------------------------------------------------------------------------- report

def markdown(r):
    L = []
    add = L.append
    add("# tdxhp bench %s (%s)\n" % (r["commit"], r["date"]))
    add("Machine: %s; %d CPU(s). Throughput is per CPU-second (getrusage or Google Benchmark CPU time): "
        "the machine may be shared, so wall figures move with its load. median [min..max] over %d runs.\n"
        % (r["host"], os.cpu_count(), r["runs"]))
    add("## Throughput\n")
    add("| what | per CPU-second | goal |")
    add("|---|---|---|")
    g = r["gbench"]
    names = {"0": "4K", "2": "hugetlb-2M", "3": "hugetlb-1G"}
    for key, label in (("BM_SimOnly", "sim alone, ops"), ("BM_SimPlusOracle", "sim + oracle, ops")):
        for b in ("3", "2", "0"):
            n = "%s/backing:%s/inject:0" % (key, b)
            if n in g:
                add("| %s, %s backing | %s | %s |" % (label, names[b], fmt(g[n]["items_per_second"]),
                                                      "1M" if key == "BM_SimPlusOracle" else ""))
    if "BM_OracleStepMix" in g:
        add("| oracle alone, steps (BM_OracleStepMix) | %s | |" % fmt(g["BM_OracleStepMix"]["items_per_second"]))
    e = r["e2e_sim"]
    add("| `tdxhp run --target sim`, all properties, steps | %s | 600k (then 1M) |" % fmt(e["steps_per_cpu_sec"]))
    add("| `tdxhp run --target sim`, steps per wall second | %s | |" % fmt(e["steps_per_sec"]))
    k = r["kvm"]
    if "skip" in k:
        add("| kvm target vs raw C loop | SKIP: %s | 50%% |" % k["skip"])
    else:
        add("| raw C loop, one reused plain VM, steps per wall s | %s | |" % fmt(k["raw_steps_per_sec"]))
        add("| `tdxhp run --target kvm`, steps per wall s | %s | |" % fmt(k["target_steps_per_sec"]))
        add("| kvm target ÷ raw loop (wall) | %s | 0.50 |" % fmt(k["ratio_wall"], 3))
    add("\nMax RSS of the end-to-end sim runs: %s KB.\n" % ", ".join(str(x.get("max_rss_kb")) for x in e["runs"]))
    t = r.get("time_to_detect")
    if t:
        add("## Time to detect (CPU seconds and cases to the first failure, median over %d seeds, %g s budget "
            "per mutant; a miss counts as infinite)\n" % (len(t["seeds"]), t["seconds_per_mutant"]))
        add("| mutant | default: CPU s | cases | killed | uniform: CPU s | cases | killed | uniform ÷ default |")
        add("|---|---|---|---|---|---|---|---|")
        for row in sorted(t["rows"], key=lambda x: -x["default"]["median_cpu_seconds"]):
            d, u = row["default"], row.get("uniform", {})
            add("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                row["mutant"], fmt(d["median_cpu_seconds"], 3), fmt(d["median_cases"]), d["killed"],
                fmt(u.get("median_cpu_seconds"), 3), fmt(u.get("median_cases")), u.get("killed", "-"),
                "-" if row["ratio_cpu"] is None else
                ("%s%.2fx" % ("≥ " if row.get("ratio_is_lower_bound") else "", row["ratio_cpu"]))))
        h = t["hardest_third"]
        add("\nHardest third for the default generator (%s): sums of medians, a miss counted as the budget: "
            "default %.3f CPU s, uniform %.3f CPU s; uniform ÷ default %s.\n"
            % (", ".join(h["mutants"]), h["default_cpu_seconds"], h["uniform_cpu_seconds"],
               "-" if h["ratio"] is None else "≥ %.2fx" % h["ratio"]))
        add("Clean sim verdicts before each matrix: %s.\n" % json.dumps(t["clean"]))
        add("## Shrink quality (default generator)\n")
        add("| mutant | shrunk steps (per killing seed) | fixture steps |")
        add("|---|---|---|")
        for row in sorted(t["rows"], key=lambda x: x["mutant"]):
            fx = row.get("fixture_steps")
            add("| %s | %s | %s |" % (row["mutant"], ", ".join(map(str, row.get("shrunk_steps", []))) or "-",
                                     "-" if fx is None or fx < 0 else fx))
    add("\n## Scaling\n")
    add("One iteration writes the range's first and last page, then converts the range shared and back "
        "(convert) or punches it (punch); sim + oracle, hugetlb-2M, one ~4 PiB slot. CPU ns per iteration:\n")
    add("| range | convert + back | punch |")
    add("|---|---|---|")
    for arg, label in (("1", "4K"), ("512", "2M"), ("262144", "1G"), ("16777216", "64G"), ("4294967296", "16T")):
        c, p = g.get("BM_ScaleConvert/%s" % arg), g.get("BM_ScalePunch/%s" % arg)
        add("| %s | %s | %s |" % (label, fmt(c and c["cpu_ns"]), fmt(p and p["cpu_ns"])))
    add("\n| slot size | max RSS of `tdxhp replay` (KB) | verdict |")
    add("|---|---|---|")
    for x in r["rss"]:
        add("| %s | %s | %s |" % (x["slot"], x["max_rss_kb"], x["verdict"]))
    return "\n".join(L) + "\n"


def finite(o):
    """inf (a mutant not killed within its budget) is null in the JSON file."""
    if isinstance(o, float) and o == float("inf"):
        return None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--e2e-seconds", type=float, default=10)
    ap.add_argument("--kvm-seconds", type=float, default=5)
    ap.add_argument("--ttd-seeds", type=int, default=5)
    ap.add_argument("--ttd-seconds", type=float, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="Google Benchmark min time per run")
    a = ap.parse_args()
    if a.runs < 1 or a.ttd_seeds < 0:
        fail("--runs must be >= 1 and --ttd-seeds >= 0")
    build = os.path.abspath(a.build)
    tdxhp = os.path.join(build, "runners", "cli", "tdxhp")
    bench = os.path.join(build, "bench", "tdxhp_bench")
    for t in (tdxhp, bench, os.path.join(build, "bench", "tdxhp_detect")):
        if not os.path.exists(t):
            fail("%s is missing: build first (make bench builds it)" % t)
    r = {"commit": commit_id(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "host": os.uname().nodename, "runs": a.runs}
    with tempfile.TemporaryDirectory(prefix="tdxhp-bench-") as tmp:
        print("bench: Google Benchmark (sim, oracle, sim+oracle, scaling) ...", file=sys.stderr, flush=True)
        r["gbench"] = gbench(bench, "BM_SimOnly/.*/inject:0|BM_SimPlusOracle/.*/inject:0|BM_OracleStepMix|BM_Scale",
                             a.runs, a.min_time)
        print("bench: end to end, tdxhp run --target sim ...", file=sys.stderr, flush=True)
        r["e2e_sim"] = e2e(tdxhp, "sim", a.e2e_seconds, list(range(1, a.runs + 1)), tmp)
        print("bench: kvm target vs raw loop ...", file=sys.stderr, flush=True)
        r["kvm"] = kvm_vs_raw(build, tdxhp, a.kvm_seconds, a.runs, tmp)
        if a.ttd_seeds:
            print("bench: time to detect (%d seeds x 2 generators) ..." % a.ttd_seeds, file=sys.stderr, flush=True)
            r["time_to_detect"] = time_to_detect(build, list(range(1, a.ttd_seeds + 1)), a.ttd_seconds, tmp)
        print("bench: RSS against slot size ...", file=sys.stderr, flush=True)
        r["rss"] = rss_vs_slot(tdxhp, tmp)
    os.makedirs(a.out, exist_ok=True)
    md = markdown(r)
    base = os.path.join(a.out, r["commit"])
    with open(base + ".json", "w") as f:
        json.dump(finite(r), f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(md)
    print(md)
    print("written: %s.json, %s.md" % (base, base))


if __name__ == "__main__":
    main()
