#!/usr/bin/env bash
# Mutation testing of the pure modules (the files listed in .cargo/mutants.toml), running their
# crate's unit tests only: every surviving ("missed") mutant is a behaviour no unit test pins.
# Not part of CI (it takes hours on 2 cores). Extra arguments go to cargo-mutants, e.g.
# `scripts/mutants.sh -f conftool-lb/src/plan.rs` (that file only) or `--in-diff FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$version"; then
  cargo install --locked "cargo-mutants@$version"
fi
# Each mutant is a fresh build in a copy of the tree: incremental caches would only fill the disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
config=.cargo/mutants.toml
# cargo-mutants adds `-f` globs to the config's `examine_globs` instead of replacing them, so
# `-f FILE` alone would still run every listed file. Given a file, run with the config minus
# its file list (the exclusions and test arguments still apply).
for arg in "$@"; do
  case $arg in
    -f | --file | --file=*)
      config=$(mktemp -t conftool-mutants.XXXXXX.toml)
      trap 'rm -f "$config"' EXIT
      awk '/^examine_globs *= *\[/ { skip = 1 } !skip { print } skip && /^\]/ { skip = 0 }' \
        .cargo/mutants.toml >"$config"
      break
      ;;
  esac
done
status=0
cargo mutants --config "$config" --no-shuffle --output "$out" "$@" || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: the table says which.
case $status in 0|2|3) ;; *) exit "$status" ;; esac
# Per file: caught, missed (the score counts these two), unviable (do not compile), timeouts.
python3 - "$out/mutants.out/outcomes.json" <<'PY' || echo "(python3 not found: see $out/mutants.out/missed.txt)"
import json, sys, collections
data = json.load(open(sys.argv[1]))
names = {"CaughtMutant": 0, "MissedMutant": 1, "Unviable": 2, "Timeout": 3}
per = collections.defaultdict(lambda: [0, 0, 0, 0])
for o in data["outcomes"]:
    scen = o.get("scenario")
    if not isinstance(scen, dict) or "Mutant" not in scen:
        continue
    column = names.get(o.get("summary"))
    if column is not None:
        per[scen["Mutant"]["file"]][column] += 1
total = [0, 0, 0, 0]
print("| file | caught | missed | unviable | timeout | score |")
print("|---|---|---|---|---|---|")
for f in sorted(per):
    c, m, u, t = per[f]
    total = [a + b for a, b in zip(total, per[f])]
    print(f"| {f} | {c} | {m} | {u} | {t} | {100*c/max(c+m,1):.0f}% |")
c, m, u, t = total
print(f"| **total** | **{c}** | **{m}** | **{u}** | **{t}** | **{100*c/max(c+m,1):.1f}%** |")
PY
echo "missed mutants: $out/mutants.out/missed.txt"
