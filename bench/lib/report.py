#!/usr/bin/env python3
"""Statistics and the report of bench/run.

Every measurement appends one JSON record to $BENCH_WORK/results.jsonl;
`render` turns the records into the table on stdout and bench/RESULTS.md.

  report.py timing ROW WHAT BUDGET OURS BASE I,J FILE...
                                                       hyperfine JSON files, one per
                                                       alternating round: results[I] is
                                                       ours, results[J] the baseline
  report.py rss ROW WHAT RUNS OURS BASE -- CMD_OURS -- CMD_BASE
  report.py size ROW WHAT BUDGET OURS FILE [BASE BASE_FILE]
  report.py machine OUT_JSON quick|full built|prebuilt NAME=COMMAND...
                                                       the machine, commit and tool versions
  report.py render MACHINE_JSON [RESULTS_MD]

BUDGET is `diff<=MS` (ours at most MS milliseconds above the baseline),
`ours<=base`, `equal` (see EQUAL_TOLERANCE), `size<=BYTES` or `-` (none).
"""

import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

RESULTS = os.path.join(os.environ.get("BENCH_WORK", "."), "results.jsonl")

# `equal`: the 95% interval of the difference includes zero, or the
# difference is within 5% of the baseline (a real but negligible offset that
# enough samples would make "significant").
EQUAL_TOLERANCE = 0.05


def append(record):
    with open(RESULTS, "a") as f:
        f.write(json.dumps(record) + "\n")


def median_difference_interval(ours, base, resamples=2000):
    """95% bootstrap interval of median(ours) - median(base)."""
    rng = random.Random(1)  # the same data gives the same report
    diffs = sorted(
        statistics.median(rng.choices(ours, k=len(ours)))
        - statistics.median(rng.choices(base, k=len(base)))
        for _ in range(resamples)
    )
    return diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def verdict(budget, ours, base, interval):
    if budget == "-":
        return None
    if budget.startswith("diff<="):
        return ours - base <= float(budget[len("diff<="):])
    if budget == "ours<=base":
        return ours <= base
    if budget == "equal":
        lo, hi = interval
        return lo <= 0 <= hi or abs(ours - base) <= EQUAL_TOLERANCE * base
    if budget.startswith("size<="):
        return ours <= int(budget[len("size<="):])
    raise SystemExit(f"report.py: unknown budget {budget!r}")


def hyperfine_samples(files, index):
    """Wall-clock samples (ms) pooled over rounds, and the mean CPU time
    (user+sys, ms) of the rounds for command `index`."""
    wall, cpu = [], []
    for path in files:
        result = json.load(open(path))["results"][index]
        wall.extend(t * 1000 for t in result["times"])
        cpu.append((result["user"] + result["system"]) * 1000)
    return wall, statistics.mean(cpu)


def timing(row, what, budget, ours_label, base_label, indexes, *files):
    ours_index, base_index = (int(i) for i in indexes.split(","))
    ours, ours_cpu = hyperfine_samples(files, ours_index)
    base, base_cpu = hyperfine_samples(files, base_index)
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    interval = median_difference_interval(ours, base)
    append({
        "row": row, "what": what, "unit": "ms", "ours_label": ours_label, "base_label": base_label,
        "ours": m_ours, "base": m_base, "interval": interval, "samples": len(ours), "rounds": len(files),
        "cpu": [ours_cpu, base_cpu], "budget": budget,
        "pass": verdict(budget, m_ours, m_base, interval),
    })


def peak_rss_kib(argv):
    """Runs argv (stdout discarded) under GNU time and returns its peak resident
    set in KiB. Not os.wait4: a child's ru_maxrss also counts the memory of the
    process it was forked from, which for Python is ~15 MB; GNU time's is
    below that of any program measured here."""
    with tempfile.NamedTemporaryFile("r") as out:
        status = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv],
                                stdout=subprocess.DEVNULL).returncode
        if status != 0:
            raise SystemExit(f"report.py: {argv} exited with {status}")
        return int(out.read().split()[-1])


def rss(row, what, runs, ours_label, base_label, *commands):
    split = [i for i, arg in enumerate(commands) if arg == "--"]
    if len(split) != 2 or split[0] != 0:
        raise SystemExit("report.py rss: expected -- CMD_OURS -- CMD_BASE")
    ours_cmd, base_cmd = list(commands[1:split[1]]), list(commands[split[1] + 1:])
    ours, base = [], []
    for _ in range(int(runs)):  # alternate, as the timing rows do
        ours.append(peak_rss_kib(ours_cmd) / 1024)
        base.append(peak_rss_kib(base_cmd) / 1024)
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    append({
        "row": row, "what": what, "unit": "MiB", "ours_label": ours_label, "base_label": base_label,
        "ours": m_ours, "base": m_base, "interval": median_difference_interval(ours, base),
        "samples": len(ours), "budget": "-", "pass": None,
    })


def size(row, what, budget, ours_label, ours_file, base_label=None, base_file=None):
    ours = os.stat(ours_file).st_size
    base = os.stat(base_file).st_size if base_file else None
    append({
        "row": row, "what": what, "unit": "bytes", "ours_label": ours_label, "base_label": base_label,
        "ours": ours, "base": base, "budget": budget, "pass": verdict(budget, ours, base, None),
    })


# ---- rendering ----

def human_bytes(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def value(record, v):
    if v is None:
        return "—"
    if record["unit"] == "bytes":
        return human_bytes(v)
    return f"{v:.2f} {record['unit']}"


def difference(record):
    if record.get("base") is None:
        return "—"
    d = record["ours"] - record["base"]
    if record["unit"] == "bytes":
        return ("+" if d >= 0 else "−") + human_bytes(abs(d))
    lo, hi = record["interval"]
    return f"{d:+.2f} ({lo:+.2f} … {hi:+.2f}) {record['unit']}"


def ratio(record):
    if record.get("base") in (None, 0):
        return "—"
    return f"{record['ours'] / record['base']:.2f}×"


def cpu_difference(record):
    cpu = record.get("cpu")
    if not cpu or cpu[1] is None:
        return "—"
    return f"{cpu[0] - cpu[1]:+.2f} ms"


def budget_text(budget):
    if budget == "-":
        return "—"
    if budget.startswith("diff<="):
        return f"≤ +{budget[len('diff<='):]} ms"
    if budget == "ours<=base":
        return "≤ baseline"
    if budget == "equal":
        return "equal"
    if budget.startswith("size<="):
        return "≤ " + human_bytes(int(budget[len("size<="):]))
    return budget


def result_text(record):
    return {True: "pass", False: "MISS", None: "—"}[record["pass"]]


COLUMNS = ["#", "benchmark", "krew-wasm", "baseline", "difference (95% interval)", "ratio",
           "CPU diff", "budget", "result"]


def cells(record):
    return [record["row"], record["what"], value(record, record["ours"]), value(record, record.get("base")),
            difference(record), ratio(record), cpu_difference(record), budget_text(record["budget"]),
            result_text(record)]


def console_table(records):
    rows = [COLUMNS] + [cells(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def markdown_table(records):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in records]
    return "\n".join(lines)


def compared(records):
    lines = []
    for r in records:
        what = f"ours: {r['ours_label']}"
        if r.get("base_label"):
            what += f"; baseline: {r['base_label']}"
        if "samples" in r:
            what += f"; {r['samples']} samples each"
            if "rounds" in r:
                what += f" in {r['rounds']} alternating rounds"
        lines.append(f"- **{r['row']}** {what}.")
    return "\n".join(lines)


def render(machine_file, results_md=None):
    machine = json.load(open(machine_file))
    records = [json.loads(line) for line in open(RESULTS)]
    machine["load_after"] = open("/proc/loadavg").read().split()[:3]
    print(console_table(records))
    print(f"\n{machine['date']}, commit {machine['commit']}; {machine['cpu']}, {machine['cores']} cores, "
          f"kernel {machine['kernel']}; load average {' '.join(machine['load_before'])} before, "
          f"{' '.join(machine['load_after'])} after" + ("; QUICK run (few samples)" if machine["quick"] else "")
          + ("; binaries from an earlier build (--no-build)" if machine["prebuilt"] else ""))
    if not results_md:
        return
    prebuilt = (" (but with --no-build: the binaries are those of an earlier build, which may"
                " not match this commit)" if machine["prebuilt"] else "")
    tools = "\n".join(f"- {name}: {version}" for name, version in machine["tools"].items())
    with open(results_md, "w") as f:
        f.write(f"""# Benchmark results

Written by `bench/run`{' --quick (few samples: indicative only)' if machine['quick'] else ''} on
{machine['date']}, commit `{machine['commit']}`{prebuilt}. Run it again to replace this file.

Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']} memory, kernel
{machine['kernel']}. Load average (1, 5, 15 min) {' '.join(machine['load_before'])} before
the run, {' '.join(machine['load_after'])} after: the machine is shared, so the absolute figures
drift; ours and the baseline run in alternating short rounds so that the
difference does not.

{markdown_table(records)}

Times are medians of wall-clock samples pooled over the rounds; the
interval is a 95% bootstrap interval of the difference of the medians. CPU
diff is the difference of mean user+system time, which other load on the
machine does not inflate. Memory is the median peak resident set size
(GNU time's `%M`). Budgets are DESIGN.md's (Performance budget); `equal`
passes when the interval includes zero or the difference is within
{EQUAL_TOLERANCE:.0%} of the baseline.

What each row compares:

{compared(records)}

Tools:

{tools}
""")
    print(f"wrote {os.path.relpath(results_md)}")


def machine(out, quick, built, *tool_commands):
    """Writes the machine description; tool_commands are `name=command line`.
    `built`: the binaries were built by this run from the working tree;
    `prebuilt`: they are whatever an earlier build left (bench/run --no-build)."""
    def run(cmd):
        """The first line a command prints, or `?` when it fails."""
        try:
            done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return "?"
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if done.returncode == 0 and lines else "?"

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown CPU")
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.splitlines()
    commit = run("git rev-parse --short=12 HEAD") + (f" + uncommitted changes in {len(dirty)} files"
                                                    if dirty else "")
    json.dump({
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": human_bytes(mem_kib * 1024),
        "kernel": os.uname().release,
        "load_before": open("/proc/loadavg").read().split()[:3],
        "quick": quick == "quick",
        "prebuilt": built == "prebuilt",
        "tools": {spec.split("=", 1)[0]: run(spec.split("=", 1)[1]) for spec in tool_commands},
    }, open(out, "w"), indent=1)


if __name__ == "__main__":
    commands = {"timing": timing, "rss": rss, "size": size, "render": render,
                "machine": machine}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
