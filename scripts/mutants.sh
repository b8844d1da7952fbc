#!/usr/bin/env bash
# Mutation testing of the pure modules (the files listed in .cargo/mutants.toml), running their
# crate's unit tests only: every surviving ("missed") mutant is a behaviour no unit test pins.
# Not part of CI (it takes tens of minutes on 2 cores). Extra arguments go to cargo-mutants,
# e.g. `scripts/mutants.sh -f conftool-core/src/selector.rs` or `--in-diff FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$version"; then
  cargo install --locked "cargo-mutants@$version"
fi
out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
status=0
cargo mutants --no-shuffle --output "$out" "$@" || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: the table says which.
case $status in 0|2|3) ;; *) exit "$status" ;; esac
# Per file: caught / missed (timeouts and unviable mutants are not counted).
python3 - "$out/mutants.out/outcomes.json" <<'PY' || awk 'BEGIN{print "(python3 not found: see '"$out"'/mutants.out/missed.txt)"}'
import json, sys, collections
data = json.load(open(sys.argv[1]))
per = collections.defaultdict(lambda: [0, 0])
for o in data["outcomes"]:
    scen = o.get("scenario")
    if not isinstance(scen, dict) or "Mutant" not in scen:
        continue
    f = scen["Mutant"]["file"]
    summary = o.get("summary")
    if summary == "CaughtMutant":
        per[f][0] += 1
    elif summary == "MissedMutant":
        per[f][1] += 1
tc = tm = 0
print("| file | caught | missed | score |")
print("|---|---|---|---|")
for f in sorted(per):
    c, m = per[f]
    tc += c; tm += m
    print(f"| {f} | {c} | {m} | {100*c/max(c+m,1):.0f}% |")
print(f"| **total** | **{tc}** | **{tm}** | **{100*tc/max(tc+tm,1):.1f}%** |")
PY
echo "missed mutants: $out/mutants.out/missed.txt"
