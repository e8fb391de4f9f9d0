//! Hostile input: arbitrary bytes and mutated valid files, under any name a landing folder
//! may hold. A run never panics; it either fails with one line naming the file, or succeeds
//! with every record read accounted for (read = accepted + rejected + excluded) and every
//! rejected record listed in `rejects`.

use proptest::prelude::*;
use serde_json::Value as Json;

use crate::sources::{config_for, data, manifest};
use crate::support::{Scratch, canonical_csv, read_table};

/// Valid files of every text reader, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let canonical = canonical_csv(&[
        (2021, "44", "USA", "85171210", 1000.0, "USD"),
        (2021, "32", "DEU", "8471", 250.5, "CNY"),
        (2021, "11", "JPN", "0101", 3.25, "USD"),
        (2021, "65", "KAZ", "6109", 1e6, "USD"),
    ]);
    let mut seeds = vec![canonical.into_bytes()];
    for sample in [
        "customs/exports-2021-cny-gbk.csv",
        "customs/exports-2021-usd-utf8bom.csv",
        "comtrade/comtrade-2021.csv",
    ] {
        seeds.push(std::fs::read(data(sample)).unwrap());
    }
    seeds
}

/// One change to a file's bytes, at a position taken modulo its length.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(u8),
    Insert(Vec<u8>),
    Delete(usize),
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let troublesome = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b",".to_vec()),
        Just(b"\xff".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xef\xbb\xbf".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"-".to_vec()),
        Just(b"NaN".to_vec()),
        prop::collection::vec(any::<u8>(), 1..16),
    ];
    prop_oneof![
        any::<u8>().prop_map(Mutation::Replace),
        troublesome.prop_map(Mutation::Insert),
        (1usize..64).prop_map(Mutation::Delete),
        (1usize..400).prop_map(Mutation::Duplicate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[(usize, Mutation)]) -> Vec<u8> {
    for (position, mutation) in mutations {
        let at = position % (bytes.len() + 1);
        match mutation {
            Mutation::Replace(byte) if at < bytes.len() => bytes[at] = *byte,
            Mutation::Replace(byte) => bytes.push(*byte),
            Mutation::Insert(inserted) => {
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Delete(length) => {
                bytes.drain(at..(at + length).min(bytes.len()));
            }
            Mutation::Duplicate(length) => {
                let copy = bytes[at..(at + length).min(bytes.len())].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

/// Runs exdep (`format = "auto"`) on `bytes` as `landing/NAME`, and checks the outcome.
fn check_run(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("landing")).unwrap();
    let file = scratch.path("landing").join(name);
    std::fs::write(&file, bytes).unwrap();
    config_for(&scratch, &file, "auto", None);
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    prop_assert!(!stderr.contains("panicked"), "{stderr}");
    if !output.status.success() {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        // A problem of the file's data: exit code 1.
        prop_assert_eq!(output.status.code(), Some(1), "{}", stderr);
        prop_assert_eq!(errors.len(), 1, "{}", stderr);
        prop_assert!(
            errors[0].contains(name),
            "the error names no file: {}",
            errors[0]
        );
        prop_assert!(
            !scratch.path("out/_manifest.json").exists() && !scratch.path("out/indices").exists(),
            "a failed run published"
        );
        return Ok(());
    }
    let input = &manifest(&scratch)["inputs"][0];
    let records = |tally: &Json| tally["records"].as_u64().unwrap();
    let by_kind =
        |kind: &str| -> u64 { input[kind].as_object().unwrap().values().map(records).sum() };
    let (read, accepted) = (input["read"].as_u64().unwrap(), records(&input["accepted"]));
    let (rejected, excluded) = (by_kind("rejected"), by_kind("excluded"));
    prop_assert_eq!(read, accepted + rejected + excluded, "{:#}", input);
    prop_assert_eq!(&input["balanced"], &Json::Bool(true));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listed = runtime
        .block_on(read_table(&scratch.path("out"), "rejects", "line"))
        .len() as u64;
    prop_assert_eq!(listed, rejected, "rejects listed vs counted");
    Ok(())
}

proptest! {
    // Each case is a run of the binary: a few dozen bound the test to about a minute.
    #![proptest_config(ProptestConfig {
        cases: 32,
        max_shrink_iters: 32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_files_never_panic_and_always_reconcile(
        seed in 0..4usize,
        mutations in prop::collection::vec((any::<usize>(), mutation()), 1..8),
    ) {
        let bytes = mutate(seeds().swap_remove(seed), &mutations);
        check_run("mutated.csv", &bytes)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_reconcile(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        name in prop::sample::select(&["any.csv", "any.csv.gz", "any.csv.zst", "any.parquet"][..]),
    ) {
        check_run(name, &bytes)?;
    }
}
