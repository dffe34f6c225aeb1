"""pm4py side of benches/vs_pm4py.rs: times read_xes + discover_dfg + get_variants.

Usage: python3 vs_pm4py.py LOG RUNS
Prints one JSON object: the median seconds over RUNS runs, the DFG and the variants.
"""

import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pm4py  # noqa: E402


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        log = pm4py.read_xes(path, show_progress_bar=False)
        dfg, _, _ = pm4py.discover_dfg(log)
        variants = pm4py.get_variants(log)
        seconds.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "pm4py_version": pm4py.__version__,
                "median_seconds": statistics.median(seconds),
                "dfg": sorted([a, b, int(count)] for (a, b), count in dfg.items()),
                "variants": sorted([list(v), int(count)] for v, count in variants.items()),
            }
        )
    )


if __name__ == "__main__":
    main()
