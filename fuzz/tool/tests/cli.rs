//! The `memslot-diff` command, called through `memslot_diff::cli::run_with`.

use std::path::{Path, PathBuf};

use memslot_diff::cli::run_with;
use memslot_harness::decode::encode;
use memslot_harness::{scenario, Target};

fn memslot_diff(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memslot-diff-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// v5.6 mishandles a failing arch prepare on DELETE (it leaves the INVALID copy installed:
/// kvm-memslot-facts.md §2.7, fixed before the seed patch): the zoo's prepare-invalid state.
/// The report must say so; the fixed state must agree.
#[test]
fn fail_prepare_on_delete_shows_the_pre_port_diverging() {
    let dir = temp_dir("failprep");
    let file = write(
        &dir,
        "failprep.scenario",
        b"set as=0 id=1 gpa=0x100000 size=2M hva=0x7f0000000000 flags=0\n\
          set as=0 id=2 gpa=0 size=64K hva=0x7f0000200000 flags=dirty\n\
          fail-prepare errno=-ENOMEM\n\
          set as=0 id=1 gpa=0x100000 size=0 hva=0x7f0000000000 flags=0\n\
          lookup as=0 gfn=0x100\n",
    );
    let (code, out, _) = memslot_diff(&["replay", "--zoo", "prepare-invalid", &file]);
    assert_eq!(code, 1, "{out}");
    for needle in [
        "DIVERGE",
        "step 4 of 5:  set as=0 id=1 gpa=0x100000 size=0",
        "differs: array of AS 0 (index 0)",
        "pre-bug-prepare-invalid id 1 base 0x100 npages 0x200 flags INVALID",
        "core    id 1 base 0x100 npages 0x200 flags 0 ",
        "also differs at this step: generation of AS 0",
        "core    -ENOMEM (Arch(-12))",
        "INVALID !",
        "generation | 8                  | 6 !",
        "<== diverges here",
        &format!("replay:  cargo memslot-diff replay {file} --zoo prepare-invalid"),
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let fixed = ["replay", "--zoo", "prepare-invalid", "--fixed", &file];
    assert_eq!(memslot_diff(&fixed).0, 0);
    // The same request without the failing prepare: everyone agrees.
    let ok = write(
        &dir,
        "ok.scenario",
        b"set id=1 gpa=0x100000 size=2M\nset id=1 gpa=0x100000 size=0\n",
    );
    assert_eq!(memslot_diff(&["replay", &ok]).0, 0);
}

#[test]
fn malformed_input_is_reported_with_file_and_line() {
    let dir = temp_dir("malformed");
    let typo = write(
        &dir,
        "typo.scenario",
        b"# fine\nset id=1 gpa=0 size=4K\nsett id=2 size=0\n",
    );
    let (code, _, err) = memslot_diff(&["replay", &typo]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{typo}:3: unknown operation 'sett'")),
        "{err}"
    );
    let number = write(&dir, "number.scenario", b"set id=1 gpa=zz size=4K\n");
    let (code, _, err) = memslot_diff(&["replay", &number]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{number}:1: bad number 'zz' for gpa")),
        "{err}"
    );
    // Without the .scenario extension a text file is still recognised as a scenario.
    let plain = write(
        &dir,
        "plain-typo",
        b"set id=1 gpa=0 size=4K\nsett id=2 size=0\n",
    );
    assert!(memslot_diff(&["replay", &plain])
        .2
        .contains(":2: unknown operation 'sett'"));
    let (code, _, err) = memslot_diff(&["replay", &dir.join("missing").display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing"), "{err}");
    let (code, _, err) = memslot_diff(&["replay", "--bogus", &typo]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    // A truncated artifact replays what the fuzz target would run, with a note.
    let mut bytes = encode(&scenario::parse("set id=1 gpa=0 size=4K\nlookup gfn=0\n").unwrap());
    bytes.truncate(bytes.len() - 4);
    let artifact = write(&dir, "crash-truncated", &bytes);
    let (code, out, err) = memslot_diff(&["replay", &artifact]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("byte 33: the input ends inside an operation"),
        "{err}"
    );
    // A directory with one bad file: the others still run, the status says bad input.
    let (code, out, _) = memslot_diff(&["replay", &dir.display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("crash-truncated: all implementations agree"),
        "{out}"
    );
}

#[test]
fn artifacts_format_to_scenarios_and_encode_back() {
    let dir = temp_dir("fmt");
    // Random-looking bytes under artifacts/lookups/: decoded as the lookups target.
    let sub = dir.join("artifacts").join("lookups");
    std::fs::create_dir_all(&sub).unwrap();
    let data: Vec<u8> = (0u32..300)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let artifact = write(&sub, "crash-1234", &data);
    let (code, text, _) = memslot_diff(&["fmt", &artifact]);
    assert_eq!(code, 0);
    assert!(text.contains("decoded as fuzz target `lookups`"), "{text}");
    let ops = scenario::parse(&text).unwrap();
    assert_eq!(ops, Target::Lookups.decode(&data).ops);
    assert!(ops.len() > 10);
    let scenario_file = write(&dir, "from-artifact.scenario", text.as_bytes());
    let bytes_file = dir.join("roundtrip.bin").display().to_string();
    let (code, out, err) =
        memslot_diff(&["encode", "--target", "lookups", &scenario_file, &bytes_file]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        Target::Lookups
            .decode(&std::fs::read(&bytes_file).unwrap())
            .ops,
        ops
    );
    // Same verdict and summary either way.
    let (c1, o1, _) = memslot_diff(&["replay", "--summary", &artifact]);
    let (c2, o2, _) = memslot_diff(&[
        "replay",
        "--summary",
        "--target",
        "lookups",
        "--bytes",
        &bytes_file,
    ]);
    let (c3, o3, _) = memslot_diff(&["replay", "--summary", &scenario_file]);
    assert_eq!((c1, c2, c3), (0, 0, 0));
    let summary = |o: &str| {
        o.lines()
            .find(|l| l.starts_with("# expect:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(summary(&o1), summary(&o2));
    assert_eq!(summary(&o1), summary(&o3));
}

#[test]
fn json_shows_every_step_of_every_implementation() {
    let dir = temp_dir("json");
    let file = write(
        &dir,
        "two.scenario",
        b"set id=1 gpa=0x1000 size=8K flags=dirty\nlookup gfn=2\n",
    );
    let (code, out, _) = memslot_diff(&["replay", "--json", &file]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["agree"], true);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[0]["op"],
        "set as=0 id=1 gpa=0x1000 size=8K hva=0 flags=dirty"
    );
    for name in ["core", "pre-fixed", "post-fixed", "post15", "oracle"] {
        assert_eq!(
            steps[1]["states"][name][0]["slots"][0]["base_gfn"], 1,
            "{name}"
        );
        assert_eq!(steps[1]["verdicts"][name]["Lookup"]["index"], 0, "{name}");
    }
}

#[test]
fn generate_stress_and_seed_corpus() {
    let (code, text, _) = memslot_diff(&["generate", "--seed", "0x2a", "--kind", "realistic"]);
    assert_eq!(code, 0);
    assert!(scenario::parse(&text).unwrap().len() > 20);
    let dir = temp_dir("stress");
    let out_dir = dir.join("out").display().to_string();
    let (code, out, _) =
        memslot_diff(&["stress", "--seed", "7", "--iters", "6", "--out", &out_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("6 programs")
            && out.contains("programs/s")
            && out.contains("all implementations agree"),
        "{out}"
    );
    let corpus = dir.join("corpus");
    let seeds = corpus.join("requests").join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    write(
        &seeds,
        "a.scenario",
        b"set id=1 gpa=0 size=4K\nlookup gfn=0\n",
    );
    // The standard decoding arms fail-prepare; a program longer than an input may be is
    // skipped with a note.
    write(&seeds, "b.scenario", b"fail-prepare errno=-12\n");
    write(
        &seeds,
        "c.scenario",
        "lookup gfn=0\n"
            .repeat(memslot_harness::decode::MAX_OPS + 1)
            .as_bytes(),
    );
    let fuzz_corpus = dir.join("fuzz-corpus");
    let (code, out, _) = memslot_diff(&[
        "seed-corpus",
        "--corpus",
        &corpus.display().to_string(),
        "--out",
        &fuzz_corpus.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("c.scenario") && out.contains("skipped") && out.contains("wrote 2 inputs"),
        "{out}"
    );
    for (name, text) in [
        ("seeds-a", "set id=1 gpa=0 size=4K\nlookup gfn=0\n"),
        ("seeds-b", "fail-prepare errno=-12\n"),
    ] {
        let bytes = std::fs::read(fuzz_corpus.join("requests").join(name)).unwrap();
        assert_eq!(
            Target::Requests.decode(&bytes).ops,
            scenario::parse(text).unwrap(),
            "{name}"
        );
    }
}

/// A known bug of both fixed-array states, fixed upstream by b6467ab142b7: with all 512 slots in
/// use, a lookup below every slot reads `memslots[512]`, past the fixed array. The zoo state
/// with that bug must be reported; the standard set carries the fix and agrees.
#[test]
fn lookup_below_all_512_slots_shows_the_ports_reading_past_the_array() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../harness/tests/known/lookup-below-512-slots.scenario");
    let file = file.display().to_string();
    let (code, out, _) = memslot_diff(&["replay", "--zoo", "below-lowest-full", &file]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("core    none (NULL)"), "{out}");
    assert!(
        out.contains("pre-bug-below-lowest-full slot id 22 at index 512"),
        "{out}"
    );
    assert!(out.contains("oracle  none (NULL)"), "{out}");
    let (code, out, _) = memslot_diff(&["replay", &file]);
    assert_eq!(code, 0, "{out}");
}

/// `throughput` measures every target over the same fixed inputs it writes out, and its
/// profile accounts for generation, every implementation and the comparison.
#[test]
fn throughput_writes_its_fixed_inputs_and_measures_them() {
    let dir = temp_dir("throughput");
    let inputs = dir.join("inputs");
    let (code, out, err) = memslot_diff(&[
        "throughput",
        "--targets",
        "differential,update",
        "--write-inputs",
        inputs.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let count = |target: &str, prefix: &str| {
        std::fs::read_dir(inputs.join(target))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(prefix)
            })
            .count()
    };
    assert_eq!(count("differential", "generated-"), 256);
    assert!(count("differential", "seeds-") >= 10);
    assert_eq!(count("update", "seeds-"), 2);
    // The same set twice: byte for byte.
    let again = dir.join("again");
    memslot_diff(&[
        "throughput",
        "--targets",
        "differential",
        "--write-inputs",
        again.to_str().unwrap(),
    ]);
    let file = "differential/generated-017";
    assert_eq!(
        std::fs::read(inputs.join(file)).unwrap(),
        std::fs::read(again.join(file)).unwrap()
    );

    let json = dir.join("t.json");
    let (code, out, err) = memslot_diff(&[
        "throughput",
        "--targets",
        "requests",
        "--time",
        "10ms",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("requests      seeds"), "{out}");
    assert!(out.contains("requests      generated"), "{out}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let profile = results
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r.get("profile"))
        .expect("a profile");
    let names: Vec<&str> = profile["implementations_ns"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "core",
            "modern",
            "oracle",
            "post-fixed",
            "post15",
            "pre-fixed",
            "tree"
        ]
    );
    assert!(profile["executions"].as_u64().unwrap() > 256);
    for line in ["generation ", "comparison "] {
        assert!(out.contains(line), "{out}");
    }

    let (code, _, err) = memslot_diff(&["throughput", "--targets", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown target 'nope'"), "{err}");
}

/// The prepare-invalid scenario above, buried among unrelated slots and lookups: `minimize`
/// gives back a program that diverges the same way, with the padding gone, and refuses a
/// program on which everything agrees.
#[test]
fn minimize_drops_what_the_divergence_does_not_need() {
    let dir = temp_dir("minimize");
    let mut text = String::new();
    for i in 0..12u64 {
        text += &format!(
            "set as=0 id={} gpa={:#x} size=4K hva={:#x} flags=0\nlookup as=0 gfn={:#x}\n",
            20 + i,
            0x4000_0000 + i * 0x10_0000,
            0x7f10_0000_0000u64 + i * 0x1000,
            0x40000 + i * 0x100
        );
    }
    text += "set as=0 id=1 gpa=0x100000 size=2M hva=0x7f0000000000 flags=0\n\
             set as=0 id=2 gpa=0 size=64K hva=0x7f0000200000 flags=dirty\n\
             set as=1 id=3 gpa=0 size=4K hva=0x7f0000300000 flags=0\n\
             fail-prepare errno=-ENOMEM\n\
             set as=0 id=1 gpa=0x100000 size=0 hva=0x7f0000000000 flags=0\n\
             lookup as=0 gfn=0x100\n\
             set as=0 id=40 gpa=0x80000000 size=4K hva=0x7f2000000000 flags=0\n";
    let file = write(&dir, "padded.scenario", text.as_bytes());
    let (code, out, _) = memslot_diff(&["replay", "--zoo", "prepare-invalid", &file]);
    assert_eq!(code, 1, "{out}");
    let wanted = out
        .lines()
        .find_map(|l| l.strip_prefix("  signature: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a signature line")
        .to_string();

    let (code, out, err) = memslot_diff(&["minimize", "--zoo", "prepare-invalid", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("31 -> 3 operations") && err.contains(&wanted),
        "{err}"
    );
    let ops = scenario::parse(&out).expect("minimize prints scenario text");
    assert_eq!(ops.len(), 3, "{out}");
    assert!(out.contains("\nfail-prepare errno=-12\n"), "{out}");
    let min = write(&dir, "min.scenario", out.as_bytes());
    let (code, again, _) = memslot_diff(&["replay", "--zoo", "prepare-invalid", &min]);
    assert_eq!(code, 1, "{again}");
    assert!(
        again.contains(&format!("  signature: {wanted} ")),
        "{again}"
    );

    let (code, _, err) = memslot_diff(&["minimize", "--zoo", "prepare-invalid", "--fixed", &file]);
    assert_eq!(code, 2);
    assert!(
        err.contains("padded.scenario: nothing to minimize"),
        "{err}"
    );
    let (code, _, err) = memslot_diff(&["minimize", "--time", "soon", &file]);
    assert_eq!(code, 2);
    assert!(err.contains("bad duration 'soon'"), "{err}");
}

/// `--variant` in a build without one says how to build it; with `--zoo` it is refused.
#[test]
fn variant_without_a_variant_build_names_the_remedy() {
    let dir = temp_dir("variant");
    let file = write(
        &dir,
        "one.scenario",
        b"set as=0 id=1 gpa=0 size=4K hva=0x1000 flags=0\n",
    );
    if memslot_reference::Port::variant().is_none() {
        let (code, _, err) = memslot_diff(&["replay", "--variant", &file]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("MEMSLOT_VARIANT=STATE:DIR"), "{err}");
    } else {
        let (code, out, err) = memslot_diff(&["replay", "--variant", &file]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, _, err) = memslot_diff(&["replay", "--variant", "--zoo", "stale-lru", &file]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'--variant' cannot be used with '--zoo <BUG>'"),
        "{err}"
    );
}

/// `arch x86-32k` (or `--arch x86-32k`) runs at today's x86 limits: ids up to 32,763 through
/// the ioctl, 32,764..32,766 in-kernel, on core, modern-32k, tree and oracle; the zoo's
/// locksteps refuse it, an unknown profile names the known ones, and printing keeps the line.
#[test]
fn the_x86_32k_profile_runs_todays_slot_ids() {
    let dir = temp_dir("arch");
    let ops = "set id=32763 gpa=0 size=4K hva=0x7f0000000000\n\
               set id=32764 gpa=1M size=4K hva=0x7f0000100000\n\
               kset id=32766 gpa=2M size=4K hva=0x7f0000200000\n\
               id id=32763\n";
    let today = write(
        &dir,
        "today.scenario",
        format!("arch x86-32k\n{ops}").as_bytes(),
    );
    let plain = write(&dir, "plain.scenario", ops.as_bytes());
    let (code, out, err) = memslot_diff(&["replay", "--summary", "--json", &today]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let doc = doc.as_array().map_or(&doc, |a| &a[0]);
    let names: Vec<&str> = doc["steps"][0]["states"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["core", "modern-32k", "oracle", "tree"]);
    let (_, summary, _) = memslot_diff(&["replay", "--summary", &today]);
    assert!(summary.contains("steps=4 EINVAL=1 ok=2"), "{summary}");
    // The same program at x86-512 refuses all three requests; --arch runs it at x86-32k.
    let (_, summary, _) = memslot_diff(&["replay", "--summary", &plain]);
    assert!(summary.contains("steps=4 EINVAL=3"), "{summary}");
    let (_, summary, _) = memslot_diff(&["replay", "--summary", "--arch", "x86-32k", &plain]);
    assert!(summary.contains("steps=4 EINVAL=1 ok=2"), "{summary}");
    let (code, _, err) = memslot_diff(&["replay", "--zoo", "stale-lru", &today]);
    assert_eq!(code, 2);
    assert!(
        err.contains("today.scenario: the program is for arch x86-32k"),
        "{err}"
    );
    let (code, _, err) = memslot_diff(&["replay", "--arch", "x86-64k", &plain]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown arch profile 'x86-64k' (known: x86-512, x86-32k)"),
        "{err}"
    );
    let (code, _, err) = memslot_diff(&[
        "stress",
        "--arch",
        "x86-32k",
        "--zoo",
        "stale-lru",
        "--iters",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("'--arch <A>' cannot be used with '--zoo <BUG>'"),
        "{err}"
    );
    let bad = write(
        &dir,
        "late.scenario",
        format!("{ops}arch x86-32k\n").as_bytes(),
    );
    let (code, _, err) = memslot_diff(&["replay", &bad]);
    assert_eq!(code, 2);
    assert!(
        err.contains("late.scenario:5: 'arch' comes before the first operation"),
        "{err}"
    );
    // fmt keeps the line; stress generates and runs at the profile.
    let bytes = dir.join("today.bin").display().to_string();
    let (code, out, _) = memslot_diff(&["encode", &today, &bytes]);
    assert_eq!(code, 0);
    assert!(out.contains("replay them with --arch x86-32k"), "{out}");
    let (code, out, _) = memslot_diff(&["fmt", "--text", &today]);
    assert_eq!(code, 0);
    assert!(out.contains("\narch x86-32k\nset as=0 id=32763"), "{out}");
    let out_dir = dir.join("stress").display().to_string();
    let (code, out, err) = memslot_diff(&[
        "stress", "--arch", "x86-32k", "--seed", "7", "--iters", "20", "--out", &out_dir,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("core, modern-32k, tree, oracle"), "{out}");
}
