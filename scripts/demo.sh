#!/usr/bin/env bash
# The main job: set up, build the built-in corpus, start Label Studio and run 3 rounds of the
# active-learning loop with the simulated annotator, then print the learning-curve table.
# Everything stays in runs/demo (the run folder, its plot and Label Studio's data); Label Studio
# keeps running so you can look at the projects. Re-running continues or reuses what is there.
#   bash scripts/demo.sh                     # simulated annotator
#   bash scripts/demo.sh --annotator human   # stops after pushing and tells you what to do next
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
earmark corpus synth --out runs/demo/corpus
earmark loop --config configs/demo.yaml --run runs/demo "$@"
echo
echo "Run folder: runs/demo (metrics.csv, learning_curve.png, rounds/*)."
earmark studio status -w runs/demo || true
