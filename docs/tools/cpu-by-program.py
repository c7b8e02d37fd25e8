#!/usr/bin/env python3
"""CPU time by program while something runs (Linux): the figures of docs/benchmarks.md's "What the suite costs in CPU".

Usage: python3 docs/tools/cpu-by-program.py OUT.json -- COMMAND [ARGS...]
Runs COMMAND; once a second reads every process's user + system time from /proc and adds what it used since the last
reading to its program (a dotnet program by its .dll, a PostgreSQL backend by its database), and the machine's busy time
from /proc/stat. Processes that live less than a second are missed: the machine's total minus the programs' sum is them
and the kernel. Prints the table and writes it to OUT.json.
"""
import json, os, subprocess, sys, time

TICK = os.sysconf("SC_CLK_TCK")


def program(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    if not args:
        return "kernel threads"
    if args[0].startswith("postgres:"):  # a backend: "postgres: user database host(port) state" (or [local] for a socket)
        words = args[0].split()
        client = len(words) > 3 and ("(" in words[3] or words[3] == "[local]")
        return "postgres backend: " + (words[2] if client else "auxiliary")
    name = os.path.basename(args[0])
    if name == "dotnet":
        return "dotnet " + next((os.path.basename(a) for a in args[1:] if a.endswith(".dll") or a in ("build", "test", "exec")), "?")
    return name


def machine_busy():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def readings():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                yield (entry, rest[19]), int(rest[11]) + int(rest[12])  # (pid, start time), utime + stime
            except (OSError, IndexError):
                pass


def main():
    out, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    seen = dict(readings())  # what ran before counts from now on
    names, used = {}, {}
    busy0, start = machine_busy(), time.time()
    child = subprocess.Popen(command)
    while True:
        done = child.poll() is not None
        for key, ticks in readings():
            before = seen.get(key, 0)
            seen[key] = ticks
            if ticks > before:
                if key not in names:  # read once per process: its command line is the same at every reading
                    names[key] = program(key[0])
                name = names[key]
                if name:
                    used[name] = used.get(name, 0) + (ticks - before) / TICK
        if done:
            break
        time.sleep(1)
    result = {"seconds": round(time.time() - start, 1), "machine_busy": round(machine_busy() - busy0, 1), "exit": child.returncode,
              "programs": {k: round(v, 1) for k, v in sorted(used.items(), key=lambda kv: -kv[1])}}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{result['seconds']} s, machine busy {result['machine_busy']} core-seconds, programs sampled {round(sum(used.values()), 1)}")
    for name, seconds in list(result["programs"].items())[:25]:
        print(f"{seconds:8.1f}  {name}")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
