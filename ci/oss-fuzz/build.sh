#!/bin/bash -eu
# OSS-Fuzz build script for memslot-diff (also used by .clusterfuzzlite/build.sh).
#
# In the OSS-Fuzz image: the source is $SRC/memslot-diff, binaries go to $OUT, scratch to
# $WORK, and CC/CFLAGS/RUSTFLAGS/SANITIZER are OSS-Fuzz's. reference/build.rs compiles the
# C ports with $CC and $CFLAGS (plus the instrumentation that matches the Rust side), so
# they are built by OSS-Fuzz's clang with its sanitizer and coverage flags.
#
# Outside a container it runs as is with SRC, OUT and WORK pointing at (temporary)
# directories and $SRC/memslot-diff the checkout (a symlink will do): .ci/run does that.
# Per fuzz target it writes $OUT/<target>, <target>_seed_corpus.zip (corpus/<target>/
# seeds and regressions as fuzz inputs), <target>.dict and <target>.options.
set -euo pipefail
: "${SRC:?SRC must be set}" "${OUT:?OUT must be set}" "${WORK:?WORK must be set}"
project=${MEMSLOT_DIFF_SRC:-$SRC/memslot-diff}
cd "$project"
# Every fuzz target: fuzz/fuzz_targets/<target>.rs.
targets=()
for f in fuzz/fuzz_targets/*.rs; do
    t=${f##*/}
    targets+=("${t%.rs}")
done

# The fuzz targets, with cargo-fuzz's default AddressSanitizer build (OSS-Fuzz's cargo
# wrapper adjusts it for other $SANITIZER values, e.g. coverage builds). OSS-Fuzz and
# ClusterFuzzLite require a sanitizer, so this is the ASan build, not the shipped -s none one
# (docs/fuzz-build.md); the repository's rustc wrapper (fuzz/coverage-scope) still limits
# coverage to the code under test.
cargo fuzz build -O --debug-assertions --target-dir "$WORK/cargo-target"
triple=$(rustc -vV | sed -n 's/^host: //p')
for t in "${targets[@]}"; do
    cp "$WORK/cargo-target/$triple/release/$t" "$OUT/$t"
done

# The seed corpus, converted by the command line tool: a plain host build, without the
# fuzzing flags OSS-Fuzz puts in the environment (they would instrument the C ports for a
# binary that does not link libFuzzer).
env -u RUSTFLAGS -u CFLAGS -u CXXFLAGS -u LDFLAGS MEMSLOT_NO_INSTRUMENT=1 \
    cargo build --release -p memslot-diff --bin memslot-diff \
    --target-dir "$WORK/tool-target"
rm -rf "$WORK/seeds"
"$WORK/tool-target/release/memslot-diff" seed-corpus --corpus corpus --out "$WORK/seeds"

for t in "${targets[@]}"; do
    rm -f "$OUT/${t}_seed_corpus.zip"
    mkdir -p "$WORK/seeds/$t"
    if [ -z "$(ls -A "$WORK/seeds/$t")" ]; then
        echo "build.sh: no seeds for $t"
    elif command -v zip >/dev/null 2>&1; then
        (cd "$WORK/seeds/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" ./*)
    else
        (cd "$WORK/seeds/$t" && python3 -m zipfile -c "$OUT/${t}_seed_corpus.zip" ./*)
    fi
    # The largest seed (all 512 slots) is about 18 KB; a program is at most 2048 operations.
    printf '[libfuzzer]\nmax_len = 32768\n' >"$OUT/$t.options"
    if [ -f "fuzz/dict/$t.dict" ]; then
        cp "fuzz/dict/$t.dict" "$OUT/$t.dict"
        printf 'dict = %s.dict\n' "$t" >>"$OUT/$t.options"
    fi
done
echo "build.sh: built ${targets[*]} into $OUT"
