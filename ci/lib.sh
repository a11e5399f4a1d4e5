# shellcheck shell=bash
# Shared by ci/setup, ci/fuzz and .ci/run: where things are and how to reach the tools.

MEMSLOT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MEMSLOT_ROOT
FUZZ_TARGETS=(differential lookups requests update)
# The targets whose inputs are operation programs with a scenario text form: what the nightly
# job triages into corpus/<target>/regressions/*.scenario, covers and ships to OSS-Fuzz. The
# update target (update_memslots driven directly, its own *.calls form) is not among them yet.
SCENARIO_TARGETS=(differential lookups requests)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

# A clang for the C ports' fuzzing instrumentation: $CC if it is one, else the newest on PATH.
find_clang() {
    local c
    for c in ${CC:-} clang clang-22 clang-21 clang-20 clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null 2>&1 && "$c" --version 2>/dev/null | grep -q clang; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# Installs clang-19 from Debian when no clang is present and we may use apt; else explains.
ensure_clang() {
    find_clang >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing clang-19 (instruments the C ports when fuzzing)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-19 llvm-19 >/dev/null
    fi
    find_clang >/dev/null || {
        say "no clang found: the C ports will be fuzzed WITHOUT coverage feedback or ASan." \
            "Install one (apt-get install clang-19) or set CC to a clang."
        return 1
    }
}

# `cargo fuzz` needs nightly features: the nightly toolchain if installed, else stable
# with RUSTC_BOOTSTRAP=1. Sets CARGO_FUZZ as an array to run.
select_fuzz_toolchain() {
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        CARGO_FUZZ=(cargo +nightly fuzz)
    else
        export RUSTC_BOOTSTRAP=1
        CARGO_FUZZ=(cargo fuzz)
    fi
}

# The two fuzz builds (docs/fuzz-build.md).
#  none:    the shipped default. No AddressSanitizer: the Rust side is safe Rust, and the C
#           ports' out-of-bounds accesses are caught by the shim's guard pages
#           (reference/c/shim/guard.h) and reported as divergences naming the port.
#  address: AddressSanitizer on Rust and C, what OSS-Fuzz and ClusterFuzzLite build. It has a
#           target directory of its own, so the two builds do not rebuild each other.
# Both get coverage only from the code under test (fuzz/coverage-scope, reference/build.rs).
FUZZ_SANITIZERS=(none address)

# select_fuzz_build SANITIZER: sets FUZZ_BUILD (the cargo-fuzz options of that build, for
# `build` and `run` alike) and FUZZ_BIN_DIR (where its binaries land).
select_fuzz_build() {
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    case ${1:-} in
        none)
            FUZZ_BUILD=(--sanitizer none)
            FUZZ_BIN_DIR=$MEMSLOT_ROOT/target/$host/release ;;
        address)
            FUZZ_BUILD=(--sanitizer address --target-dir "$MEMSLOT_ROOT/target/fuzz-asan")
            FUZZ_BIN_DIR=$MEMSLOT_ROOT/target/fuzz-asan/$host/release ;;
        *) die "unknown sanitizer '${1:-}' (known: ${FUZZ_SANITIZERS[*]})" ;;
    esac
}

ensure_cargo_fuzz() {
    cargo fuzz --version >/dev/null 2>&1 && return 0
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
}

# cargo-mutants generates the core's mutants for `memslot-diff mutants` (its JSON listing is
# read as of version 27; the keys in ci/mutants-sample.txt and core/mutants-equivalent.txt
# are of that version's mutants).
CARGO_MUTANTS_VERSION=27.1.0
ensure_cargo_mutants() {
    cargo mutants --version 2>/dev/null | grep -q "^cargo-mutants $CARGO_MUTANTS_VERSION\$" && return 0
    say "installing cargo-mutants $CARGO_MUTANTS_VERSION"
    cargo install cargo-mutants --locked --quiet --version "$CARGO_MUTANTS_VERSION"
}
