#!/usr/bin/env python3
"""The cost bound on hostile inputs (issue 10): no hostile file may cost more than 1 s of wall time
or 100 MB of peak memory beyond what the same command costs on a normal input of the same kind.

For every case of tests/test_hostile*.cpp (rebuilt here as files), and every file of fuzz/corpus/,
this runs the CLI verb that reads it (train, eval, predict, summary) under `/usr/bin/time -f
'%e %M'`, and the same verb on a valid input as the baseline, and prints one row per case. A case
fails when it exceeds baseline + 1 s or baseline + 100 MB, ends on a signal, or exits otherwise
than expected (a refused file must exit 1 or 2, and its message must say why); the script then
exits 1. Usage: cost_check.py [--bin build/bin/neutrino] [--source .] [--keep DIR]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import hostile_cases
import hostile_files

TIME = "/usr/bin/time"
MAX_EXTRA_SECONDS = 1.0
MAX_EXTRA_MB = 100.0
# A case that hangs must fail the check, not the ctest timeout, and never block it.
HARD_LIMIT_SECONDS = 30
# Baselines are the median of this many runs; a case over the bound is re-run (best of this many),
# so that one scheduling hiccup on a busy machine does not fail the check, while a real blow-up
# (every run over) still does.
RUNS = 3

# Expected outcomes: "refuse" exits 1 or 2; "accept" exits 0 (a documented conversion or a bound
# just inside the limit); "any" exits 0, 1 or 2 (fuzz corpus entries: arbitrary inputs, some valid).
from hostile_files import ACCEPT, REFUSE  # noqa: E402  (and ANY: anything but a signal)


class Runner:
    def __init__(self, binary, work):
        self.binary = str(binary)
        self.work = Path(work)
        self.timing = self.work / "time.txt"

    def once(self, args):
        """One run: (exit code or -signal, seconds, peak MB, output)."""
        cmd = [TIME, "-f", "%e %M", "-o", str(self.timing), self.binary] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, cwd=self.work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=HARD_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return "hang", float(HARD_LIMIT_SECONDS), 0.0, out.decode(errors="replace")
        lines = self.timing.read_text().strip().splitlines()
        seconds, kb = lines[-1].split()
        code = proc.returncode
        # GNU time reports a signal in its own line and exits 128 + the signal number.
        if any("terminated by signal" in line for line in lines):
            code = -(code - 128)
        return code, float(seconds), int(kb) / 1024.0, out.decode(errors="replace")

    def baseline(self, args):
        runs = [self.once(args) for _ in range(RUNS)]
        for code, _, _, out in runs:
            if code != 0:
                raise SystemExit(f"cost_check: the baseline {args} failed ({code}): {out}")
        seconds = sorted(r[1] for r in runs)[RUNS // 2]
        mb = sorted(r[2] for r in runs)[RUNS // 2]
        return seconds, mb


def outcome_ok(expect, code):
    if not isinstance(code, int) or code < 0:
        return False
    if expect == REFUSE:
        return code in (1, 2)
    if expect == ACCEPT:
        return code == 0
    return code in (0, 1, 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--bin", default=str(here.parent.parent / "build" / "bin" / "neutrino"))
    parser.add_argument("--source", default=str(here.parent.parent))
    parser.add_argument("--keep", help="write the files into this folder and keep them")
    args = parser.parse_args()
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"cost_check: {TIME} is missing (Debian package 'time'; scripts/setup.sh installs it)")
    binary = Path(args.bin).resolve()
    source = Path(args.source).resolve()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="neutrino_cost_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return check(Runner(binary, work), work, source)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def check(runner, work, source):
    setup = hostile_files.Setup(runner, work, source)
    baselines = {name: runner.baseline(argv) for name, argv in setup.baselines().items()}
    cases = hostile_cases.cases(setup) + hostile_cases.corpus_cases(setup, source / "fuzz" / "corpus")

    rows, failures = [], 0
    for case in cases:
        base_s, base_mb = baselines[case.baseline]
        best = None
        for attempt in range(RUNS):
            code, seconds, mb, out = runner.once(case.argv)
            if best is None or (seconds, mb) < (best[1], best[2]):
                best = (code, seconds, mb, out)
            over = seconds > base_s + MAX_EXTRA_SECONDS or mb > base_mb + MAX_EXTRA_MB
            if not over or code == "hang":
                break
        code, seconds, mb, out = best
        why = []
        if code == "hang":
            why.append(f"ran past {HARD_LIMIT_SECONDS} s")
        elif code < 0:
            why.append(f"signal {-code}")
        elif not outcome_ok(case.expect, code):
            why.append(f"expected {case.expect}")
        if seconds > base_s + MAX_EXTRA_SECONDS:
            why.append(f"+{seconds - base_s:.2f} s")
        if mb > base_mb + MAX_EXTRA_MB:
            why.append(f"+{mb - base_mb:.0f} MB")
        if case.message and case.expect == REFUSE and case.message not in out and not why:
            why.append(f"message lacks '{case.message}'")
        verdict = "ok" if not why else "FAIL: " + ", ".join(why)
        failures += bool(why)
        rows.append((case.name, str(code), f"{seconds:.2f}", f"{mb:.1f}",
                     f"{case.baseline} {base_s:.2f} s {base_mb:.1f} MB", verdict,
                     out.strip().splitlines()[-1][:200] if why and out.strip() else ""))

    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(6)]
    for row in [HEADER] + rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])).rstrip())
        if row[6]:
            print("    output: " + row[6])
    print(f"{len(rows)} cases, {failures} over the bound or wrong "
          f"(bound: baseline + {MAX_EXTRA_SECONDS:g} s, baseline + {MAX_EXTRA_MB:g} MB)")
    return 1 if failures else 0


HEADER = ("case", "exit", "seconds", "peak_MB", "baseline", "verdict", "")

if __name__ == "__main__":
    sys.exit(main())
