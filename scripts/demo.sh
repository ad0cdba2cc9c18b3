#!/usr/bin/env bash
# The main job, end to end, on the built-in synthetic corpus (run by `make demo`):
#   synth-corpus (with voice stems) -> evaluate (train the paper's CRNN and Attention-CRNN on
#   the mix and our voice embedder on separated vocals, embed the training split into the
#   vector database, build the FAISS indexes, classify the test songs with every method, the
#   GE2E speaker encoder and MFCC + LogReg too, write Table-1 reports) -> query one test song
#   with the voice embedder's home, with its evidence -> info --check.
# Sizes and training budget can be overridden from the environment; the defaults finish in
# well under 15 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${DEMO_OUT:-demo-out}
SINGERS=${DEMO_SINGERS:-20}
ALBUMS=${DEMO_ALBUMS:-6}
SONGS=${DEMO_SONGS_PER_ALBUM:-2}
SECONDS_PER_SONG=${DEMO_SECONDS:-15}
EPOCHS=${DEMO_EPOCHS:-10}
PATIENCE=${DEMO_PATIENCE:-4}
PRECISION=${DEMO_PRECISION:-bf16}  # bfloat16 autocast for training: 2x on CPUs with AMX / AVX512-BF16
BATCH=${DEMO_BATCH_SIZE:-16}
LR=${DEMO_LR:-0.001}
SEEDS=${DEMO_SEEDS:-0}
# One torch thread: measured 10 min for the whole demo even with another job on the second
# core, while two jobs of 2 threads each on 2 cores slowed epochs 5-10x (OpenMP oversubscription).
THREADS=${DEMO_THREADS:-1}  # torch threads; empty = all cores
export SINGERID_NO_PROGRESS=${SINGERID_NO_PROGRESS:-}

started=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" "$(( $(date +%s) - started ))"; }

step "1/4 synthetic corpus: $SINGERS singers x $ALBUMS albums x $SONGS songs x ${SECONDS_PER_SONG}s"
singerid synth-corpus "$OUT/corpus" --singers "$SINGERS" --albums "$ALBUMS" --songs-per-album "$SONGS" \
    --seconds "$SECONDS_PER_SONG" --seed 0 --stems

step "2/4 evaluate: train, embed, index, classify (album split, seeds $SEEDS)"
singerid evaluate --data "synthetic=$OUT/corpus" --seeds "$SEEDS" --epochs "$EPOCHS" --patience "$PATIENCE" \
    --batch-size "$BATCH" --lr "$LR" --precision "$PRECISION" ${THREADS:+--threads "$THREADS"} --out "$OUT/eval"

first_seed=${SEEDS%%,*}
HOME_DIR="$OUT/eval/runs/synthetic/seed-$first_seed/voice"  # our voice embedder: it separates the voice itself
SONG="$OUT/corpus/mp3s-32k/$(head -n 1 "$OUT/corpus/lists/a20-tst-tracks.list").mp3"

step "3/4 query a test song (never seen in training) against the vector database"
singerid query "$SONG" --home "$HOME_DIR" --evidence 3

step "4/4 what the vector database holds"
singerid info --home "$HOME_DIR" --check

step "done"
echo "reports: $OUT/eval/report.md  $OUT/eval/report.html"
