"""Token-based replay fitness of the synthetic logs against their own nets, computed by pm4py.

Prints one JSON object per log so the figures can be compared with `attest mine conform`.
Each XES trace is replayed as its own case (the legacy log object), because every trace
in these synthetic logs carries the same concept:name.
"""

import glob
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import pm4py  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../../../shared/logs/synthetic")
for net_path in sorted(glob.glob(os.path.join(root, "*", "*.pnml"))):
    net, im, fm = pm4py.read_pnml(net_path)
    for log_path in sorted(glob.glob(os.path.join(os.path.dirname(net_path), "*.xes.gz"))):
        log = pm4py.read_xes(log_path, return_legacy_log_object=True, show_progress_bar=False)
        fit = pm4py.fitness_token_based_replay(log, net, im, fm)
        print(json.dumps({"log": os.path.basename(log_path), **{k: float(v) for k, v in fit.items()}}), flush=True)
