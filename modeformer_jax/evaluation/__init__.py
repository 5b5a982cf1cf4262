"""Sync-accuracy evaluation (SPEC section 5): protocol.py turns score arrays into the reported numbers,
evaluate.py runs a SyncModel over a split (and gives the trainer its validation numbers), report.py writes
results.json, the Table 1 markdown and the plots. `modeformer eval` and experiments/ build on these."""
