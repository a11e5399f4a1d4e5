//! Builds the literal C ports, one translation unit per port state (`c/states/*.c`), and the
//! shim's guarded allocator (`c/shim/guard.c`) into one static library.
//!
//! `cc` does not inherit RUSTFLAGS, so the instrumentation the Rust side gets from
//! cargo-fuzz (`--cfg fuzzing`, `-Zsanitizer=...`) or from `-Cinstrument-coverage` is
//! added here by hand, with clang, so that libFuzzer sees the C ports' edges and the
//! sanitizer sees their memory accesses. `CC` and `CFLAGS` are honoured (OSS-Fuzz sets
//! them); without a clang the ports are built uninstrumented and the build says so.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Besides `c/states/*.c`.
const SOURCES: [&str; 2] = ["c/api_layout.c", "c/shim/guard.c"];
/// The directory of mutant schemata to build the ports from (`memslot-diff mutants`).
const MUTANT_SOURCES: &str = "MEMSLOT_MUTANT_SOURCES";
/// What fuzz builds do not trace (the shim's infrastructure).
const COVERAGE_IGNORELIST: &str = "c/coverage-ignorelist.txt";
/// `STATE:DIR`: build the user's own copy of a port, `DIR` (the state's port directory,
/// `c/<port>/`, with their patch applied), as the state `STATE` into one more implementation,
/// `variant` (see the README, "Bring your own variant").
const VARIANT: &str = "MEMSLOT_VARIANT";

fn main() {
    for dir in [
        "c", "c/shim", "c/pre", "c/post", "c/post15", "c/modern", "c/states",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-changed={COVERAGE_IGNORELIST}");
    for var in [
        "CC",
        "CFLAGS",
        "MEMSLOT_WERROR",
        "MEMSLOT_NO_INSTRUMENT",
        MUTANT_SOURCES,
        VARIANT,
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // `memslot-diff mutants` builds the ports from its mutant schemata: copies of
    // `c/<port>/` in which every mutant is compiled in behind `MEMSLOT_MUTANT=<id>`. Found
    // first on the include path, they replace the ports for `#include "<port>/kvm_main.c"`.
    let mutants = env::var_os(MUTANT_SOURCES).map(PathBuf::from);
    if let Some(dir) = &mutants {
        println!("cargo:rerun-if-changed={}", dir.display());
        println!(
            "cargo:warning=memslot-reference: the C ports come from the mutant schemata in {} \
             ({MUTANT_SOURCES}): this build is for memslot-diff mutants only",
            dir.display()
        );
    }

    let mut states: Vec<PathBuf> = std::fs::read_dir("c/states")
        .expect("reference/c/states")
        .map(|entry| entry.expect("reference/c/states entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "c"))
        .collect();
    states.sort();
    let mut build = ports_build(mutants.as_deref());
    if mutants.is_some() {
        // A dropped initialization must leave a defined value: otherwise the compiler may
        // assume the `if (!mutant)` around it is always taken (reading the variable
        // uninitialized would be undefined) and the mutant silently never happens. The
        // value is a pattern (0xAA... in gcc and clang), not zero: zero would often be the
        // very value the dropped statement wrote (KVM_MR_CREATE, NULL, a memset) and hide it.
        build.flag_if_supported("-ftrivial-auto-var-init=pattern");
    }
    build.files(SOURCES).files(&states);

    let variant = match env::var(VARIANT) {
        Ok(spec) if !spec.is_empty() => {
            Some(Variant::prepare(&spec, &states).unwrap_or_else(|e| {
                panic!("{VARIANT}={spec}: {e} (expected STATE:DIR, e.g. modern:/tmp/my-modern)")
            }))
        }
        _ => None,
    };
    let mut variant_build = variant.as_ref().map(|v| {
        let mut b = ports_build(Some(&v.include));
        b.file(&v.unit);
        b
    });

    let wants = Instrumentation::requested();
    if wants.fuzzer && wants.sanitizers.iter().any(|s| s == "address") {
        // Plain `cargo fuzz build` / `run` default to this; the project's scripts do not.
        println!(
            "cargo:warning=memslot-reference: AddressSanitizer fuzz build (cargo-fuzz's default). \
             The shipped build is `cargo fuzz run -s none TARGET` (what ci/fuzz runs): the C \
             ports' out-of-bounds accesses are caught by the shim's guard pages there, and it \
             finds the zoo's bugs several times faster (docs/fuzz-build.md)."
        );
    }
    if !wants.is_empty() {
        match find_clang() {
            Some(clang) => {
                for b in std::iter::once(&mut build).chain(variant_build.as_mut()) {
                    if env::var_os("CC").is_none() {
                        b.compiler(&clang);
                    }
                    for flag in wants.clang_flags() {
                        b.flag(&flag);
                    }
                }
            }
            None => println!(
                "cargo:warning=memslot-reference: {} requested but no clang found: the C ports \
                 are built WITHOUT coverage or sanitizer instrumentation. Install one with \
                 `apt-get install -y clang-19` or set CC to a clang.",
                wants.describe()
            ),
        }
    }
    build.compile("memslot_reference");
    if let (Some(v), Some(b)) = (&variant, variant_build) {
        println!(
            "cargo:warning=memslot-reference: the variant is {} built from {} ({VARIANT})",
            v.state,
            v.source.display()
        );
        b.compile("memslot_variant");
    }
    write_port_tables(&states, variant.as_ref());
}

/// A build of port translation units: `first` (a directory replacing ports for their
/// `#include "<port>/..."`) ahead of `c/` on the include path, the ports' language and warnings.
fn ports_build(first: Option<&Path>) -> cc::Build {
    let mut build = cc::Build::new();
    if let Some(dir) = first {
        build.include(dir);
    }
    build
        .include("c")
        .include("c/shim")
        .flag("-std=gnu11")
        .warnings(true)
        .extra_warnings(true)
        // The kernel's Makefile disables it too: gcc cannot see that kvm_set_memslot()'s
        // invalid_slot is set and used under the same `change` test.
        .flag_if_supported("-Wno-maybe-uninitialized")
        // .ci/run sets this: a warning in a port is a failure there, not on users' compilers.
        .warnings_into_errors(env::var_os("MEMSLOT_WERROR").is_some());
    build
}

/// The user's own copy of a port, compiled as one more state (`memslot_variant_*`).
struct Variant {
    /// The state it is built as, `c/states/<state>.c`.
    state: String,
    /// The patched copy of that state's port directory.
    source: PathBuf,
    /// `$OUT_DIR/variant/`, holding the copy as `<port>/`: first on the variant's include
    /// path, so that the state's `#include "<port>/kvm_main.c"` finds the copy.
    include: PathBuf,
    /// `$OUT_DIR/variant/variant.c`: the state's unit, renamed.
    unit: PathBuf,
}

impl Variant {
    fn prepare(spec: &str, states: &[PathBuf]) -> Result<Variant, String> {
        let (state, dir) = spec.split_once(':').ok_or("no `:` between STATE and DIR")?;
        let state = state.replace('-', "_");
        let unit_path = states
            .iter()
            .find(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == state))
            .ok_or_else(|| {
                let known: Vec<String> = states
                    .iter()
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .collect();
                format!("unknown state `{state}` (known: {})", known.join(", "))
            })?;
        let source = PathBuf::from(dir);
        if !source.is_absolute() {
            return Err(format!(
                "{dir} is relative: give an absolute DIR (the build runs in reference/)"
            ));
        }
        if !source.join("kvm_main.c").is_file() {
            return Err(format!(
                "{} has no kvm_main.c: DIR is a copy of the state's port directory \
                 (reference/c/<port>/) with your patch applied",
                source.display()
            ));
        }
        println!("cargo:rerun-if-changed={}", source.display());
        let text = std::fs::read_to_string(unit_path).map_err(|e| e.to_string())?;
        // The state's port directory: the one its kvm_main.c is included from.
        let port = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("#include \""))
            .find_map(|l| l.strip_suffix("/kvm_main.c\""))
            .ok_or_else(|| format!("{} includes no <port>/kvm_main.c", unit_path.display()))?
            .to_owned();
        let define = format!("#define MEMSLOT_PORT {state}");
        if !text.contains(&define) {
            return Err(format!("{} has no `{define}`", unit_path.display()));
        }
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("variant");
        let copy = out.join(&port);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&copy).map_err(|e| e.to_string())?;
        for entry in std::fs::read_dir(&source).map_err(|e| format!("{dir}: {e}"))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_file() {
                std::fs::copy(&path, copy.join(path.file_name().expect("file name")))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let unit = out.join("variant.c");
        let renamed = text.replace(&define, "#define MEMSLOT_PORT variant");
        std::fs::write(&unit, renamed).map_err(|e| e.to_string())?;
        Ok(Variant {
            state,
            source,
            include: out,
            unit,
        })
    }
}

/// The functions every state exports (`memslot_<state>_<name>`), as `PortFns` fields.
const API_FUNCTIONS: &[(&str, &str)] = &[
    ("create_vm", "() -> *mut Kvm"),
    ("destroy_vm", "(kvm: *mut Kvm)"),
    (
        "ioctl_set_memory_region",
        "(kvm: *mut Kvm, mem: *const MemslotApiRegion) -> i32",
    ),
    (
        "set_memory_region",
        "(kvm: *mut Kvm, mem: *const MemslotApiRegion) -> i32",
    ),
    (
        "search_memslots",
        "(kvm: *mut Kvm, as_id: i32, gfn: u64, out: *mut MemslotApiSlot) -> i32",
    ),
    (
        "id_to_memslot",
        "(kvm: *mut Kvm, as_id: i32, id: i32, out: *mut MemslotApiSlot) -> i32",
    ),
    (
        "search_each",
        "(kvm: *mut Kvm, as_id: i32, gfns: *const u64, n: i32, out: *mut MemslotApiSlot, index: *mut i32, lru: *mut i32) -> i32",
    ),
    (
        "id_to_memslot_each",
        "(kvm: *mut Kvm, as_id: i32, ids: *const i32, n: i32, out: *mut MemslotApiSlot, index: *mut i32) -> i32",
    ),
    (
        "for_each_memslot",
        "(kvm: *mut Kvm, as_id: i32, ids: *mut i16, cap: i32) -> i32",
    ),
    (
        "gfn_range_memslots",
        "(kvm: *mut Kvm, as_id: i32, start: u64, end: u64, ids: *mut i16, cap: i32) -> i32",
    ),
    (
        "hva_range_memslots",
        "(kvm: *mut Kvm, as_id: i32, start: u64, end: u64, ids: *mut i16, cap: i32) -> i32",
    ),
    (
        "get_state",
        "(kvm: *mut Kvm, as_id: i32, out: *mut MemslotApiState, max: u32) -> i32",
    ),
    ("lru_slot", "(kvm: *mut Kvm, as_id: i32) -> i32"),
    ("set_lru_slot", "(kvm: *mut Kvm, as_id: i32, lru: i32)"),
    ("set_prepare_error", "(kvm: *mut Kvm, error: i32)"),
    (
        "update_memslots",
        "(kvm: *mut Kvm, as_id: i32, slot: *const MemslotApiSlot, change: i32) -> i32",
    ),
    ("warn_count", "() -> u64"),
    ("last_warn", "() -> *const c_char"),
    (
        "check_structure",
        "(kvm: *mut Kvm, as_id: i32, msg: *mut c_char, len: i32) -> i32",
    ),
    ("create_vm_type", "(vm_type: u64, error: *mut i32) -> *mut Kvm"),
    (
        "ioctl_set_memory_region2",
        "(kvm: *mut Kvm, mem: *const MemslotApiRegion2) -> i32",
    ),
    (
        "create_guest_memfd",
        "(kvm: *mut Kvm, size: u64, flags: u64) -> i32",
    ),
    ("mem_slots_num", "() -> i32"),
];

/// `$OUT_DIR/port_states.rs`: for each `c/states/<state>.c`, the extern declarations of its C
/// API and a `PortFns` table named after it, so that a state is added by adding its file.
fn write_port_tables(states: &[PathBuf], variant: Option<&Variant>) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut names = Vec::new();
    let table = |out: &mut String, state: &str| {
        let table = state.to_uppercase();
        out.push_str("extern \"C\" {\n");
        for (name, signature) in API_FUNCTIONS {
            writeln!(out, "    fn memslot_{state}_{name}{signature};").unwrap();
        }
        out.push_str("}\n");
        writeln!(out, "pub static {table}: PortFns = PortFns {{").unwrap();
        for (name, _) in API_FUNCTIONS {
            writeln!(out, "    {name}: memslot_{state}_{name},").unwrap();
        }
        out.push_str("};\n");
    };
    for path in states {
        let state = path
            .file_stem()
            .expect("state file")
            .to_string_lossy()
            .into_owned();
        table(&mut out, &state);
        names.push(state);
    }
    writeln!(out, "/// The C name of every port state, sorted.").unwrap();
    writeln!(out, "pub const STATES: &[&str] = &{names:?};").unwrap();
    let doc = format!(
        "/// The user's variant ({VARIANT}): its table, the state it is built as, its source.\n"
    );
    match variant {
        Some(v) => {
            table(&mut out, "variant");
            out.push_str(&doc);
            writeln!(
                out,
                "pub static VARIANT_OF: Option<(&PortFns, &str, &str)> = Some((&VARIANT, {:?}, {:?}));",
                v.state,
                v.source.display().to_string()
            )
            .unwrap();
        }
        None => writeln!(
            out,
            "{doc}pub static VARIANT_OF: Option<(&PortFns, &str, &str)> = None;"
        )
        .unwrap(),
    }
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("port_states.rs");
    std::fs::write(&dest, out).expect("write port_states.rs");
}

/// What the Rust side of this build is instrumented with, read from cargo's view of the target.
#[derive(Default)]
struct Instrumentation {
    fuzzer: bool,
    /// The Rust side traces comparisons (cargo-fuzz's default; `--no-trace-compares` drops
    /// it). `-fsanitize=fuzzer-no-link` implies trace-cmp for C, so it is removed to match.
    trace_compares: bool,
    sanitizers: Vec<String>,
    coverage: bool,
}

impl Instrumentation {
    fn requested() -> Self {
        if env::var_os("MEMSLOT_NO_INSTRUMENT").is_some() {
            return Self::default();
        }
        let fuzzer = env::var_os("CARGO_CFG_FUZZING").is_some()
            || env::var_os("CARGO_CFG_FUZZING_LIBFUZZER").is_some();
        let sanitizers = env::var("CARGO_CFG_SANITIZE")
            .map(|s| {
                s.split(',')
                    .map(str::to_owned)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
        let has_flag = |name: &str| rustflags.split('\x1f').any(|flag| flag.contains(name));
        let coverage = has_flag("instrument-coverage");
        // Without sanitizer-coverage options in RUSTFLAGS (a custom fuzzing build), keep
        // clang's default: trace comparisons.
        let trace_compares =
            has_flag("sanitizer-coverage-trace-compares") || !has_flag("sanitizer-coverage");
        Self {
            fuzzer,
            trace_compares,
            sanitizers,
            coverage,
        }
    }

    fn is_empty(&self) -> bool {
        !self.fuzzer && self.sanitizers.is_empty() && !self.coverage
    }

    fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.fuzzer {
            what.push("libFuzzer coverage".to_owned());
        }
        what.extend(self.sanitizers.iter().map(|s| format!("{s} sanitizer")));
        if self.coverage {
            what.push("source-based coverage".to_owned());
        }
        what.join(" and ")
    }

    fn clang_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.fuzzer {
            flags.push("-fsanitize=fuzzer-no-link".to_owned());
            let ignorelist = Path::new(&env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
                .join(COVERAGE_IGNORELIST);
            flags.push(format!(
                "-fsanitize-coverage-ignorelist={}",
                ignorelist.display()
            ));
            if !self.trace_compares {
                flags.push("-fno-sanitize-coverage=trace-cmp".to_owned());
            }
        }
        for sanitizer in &self.sanitizers {
            flags.push(format!("-fsanitize={sanitizer}"));
        }
        if self.coverage {
            flags.push("-fprofile-instr-generate".to_owned());
            flags.push("-fcoverage-mapping".to_owned());
        }
        if !flags.is_empty() {
            flags.push("-fno-omit-frame-pointer".to_owned());
        }
        flags
    }
}

/// `$CC` if it is a clang, else the first clang on PATH (newest versioned one first).
fn find_clang() -> Option<PathBuf> {
    if let Some(cc) = env::var_os("CC") {
        let cc = PathBuf::from(cc);
        return is_clang(&cc).then_some(cc);
    }
    let names = ["clang"]
        .into_iter()
        .map(str::to_owned)
        .chain((14..=22).rev().map(|v| format!("clang-{v}")));
    names.map(PathBuf::from).find(|c| is_clang(c))
}

fn is_clang(compiler: &Path) -> bool {
    Command::new(compiler)
        .arg("--version")
        .output()
        .map(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains("clang"))
        .unwrap_or(false)
}
