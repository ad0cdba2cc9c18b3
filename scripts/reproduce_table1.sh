#!/usr/bin/env bash
# Reproduce the KNN-Net paper's Table 1 on whichever of its datasets are on disk.
#
# Usage: scripts/reproduce_table1.sh DATA_ROOT [OUT]
#   DATA_ROOT/artist20, DATA_ROOT/singer32, DATA_ROOT/singer60: the datasets found there are
#   evaluated (see ../shared/datasets.md for their layouts); OUT defaults to ./table1.
#
# The paper's protocol: artist20 split by album 4/1/1 per artist, singer32/60 split 8:1:1
# per singer (both are the readers' "album" split mode); the CRNN baseline's seeds 0, 21 and
# 42; every method (CRNN, Attention-CRNN, Attention-CRNN-KNN, plus CRNN-KNN and the MFCC +
# logistic-regression baseline); K = 11; exact (flat) FAISS search; training settings of the
# CRNN baseline (up to 200 epochs, batch 16, Adam 1e-3, patience 10).
# Rerunning with the same OUT reuses every model already trained. Extra arguments after OUT
# go to `singerid evaluate` (e.g. --gpu, or --epochs 50 for a shorter run).
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    [[ $# -ge 1 ]] && exit 0 || exit 2
fi

data_root=$1
shift
out=table1
if [[ $# -ge 1 && "$1" != -* ]]; then
    out=$1
    shift
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
singerid="$here/.venv/bin/singerid"
if [[ ! -x "$singerid" ]]; then
    echo "error: $singerid not found; run \`make venv\` (or \`make test\`) in $here first" >&2
    exit 1
fi
if [[ ! -d "$data_root" ]]; then
    echo "error: DATA_ROOT $data_root is not a directory" >&2
    exit 1
fi

datasets=()
for name in artist20 singer32 singer60; do
    if [[ -d "$data_root/$name" ]]; then
        datasets+=(--data "$name=$data_root/$name")
        echo "found $name: $data_root/$name"
    fi
done
if [[ ${#datasets[@]} -eq 0 ]]; then
    echo "error: none of $data_root/artist20, $data_root/singer32, $data_root/singer60 exists" >&2
    exit 1
fi

exec "$singerid" evaluate "${datasets[@]}" \
    --split album --seeds 0,21,42 \
    --methods crnn,attcrnn,attcrnn-knn,crnn-knn,mfcc-logreg \
    --k 11 --index flat \
    --out "$out" "$@"
