//! The pipeline against Azure Blob Storage's protocol, as tested as S3: Azurite (the npm
//! package's blob server, started and stopped by the test on 127.0.0.1) holds the inputs,
//! the warehouse and the tables, in both formats; the tables are the bytes of a local run;
//! two runs at once leave one to publish, through the lease's conditional writes on blobs.
//! The test's own hands on the container are `tests/reference/azure_blobs.py`
//! (`azure-storage-blob`).
//!
//! It needs `azurite-blob` and python3 with `azure-storage-blob`, `deltalake` and `polars`,
//! so it is `#[ignore]`d; the README's test command runs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::delta::read_published;
use crate::support::{
    LocalServer, Scratch, assert_one_refused_on_the_lock, configs_dir, reference_script,
    table_files,
};

const CONTAINER: &str = "exdep";

/// An Azurite blob server with the container [`CONTAINER`].
struct Azurite {
    _server: LocalServer,
    /// `http://127.0.0.1:PORT`.
    url: String,
}

impl Azurite {
    fn start(scratch: &Scratch) -> Self {
        let data = scratch.path("azurite").display().to_string();
        let server = LocalServer::start(
            "azurite-blob",
            &[
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "{port}",
                "--location",
                &data,
                "--silent",
                "--skipApiVersionCheck",
            ],
            "npm install -g azurite",
        );
        let azurite = Self {
            url: server.url(),
            _server: server,
        };
        azurite.blobs(&["create"]);
        azurite
    }

    /// Runs `azure_blobs.py COMMAND ENDPOINT CONTAINER ARGS`.
    fn blobs(&self, args: &[&str]) {
        let mut script_args = vec![args[0], self.url.as_str(), CONTAINER];
        script_args.extend_from_slice(&args[1..]);
        reference_script(
            "azure_blobs.py",
            &script_args,
            None,
            "python3 -m pip install azure-storage-blob",
            "",
        );
    }

    /// The environment variables that point exdep at this server's emulator account.
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("AZURE_STORAGE_USE_EMULATOR", "true"),
            ("AZURITE_BLOB_STORAGE_URL", self.url.as_str()),
        ]
    }

    /// `exdep ARGS` in the scratch folder, pointed at this server's emulator account.
    fn exdep(&self, scratch: &Scratch, args: &[&str]) -> Command {
        scratch.exdep_command(args, &self.env())
    }

    /// Runs `exdep run --config CONFIG --quiet` and insists it succeeds.
    fn run(&self, scratch: &Scratch, config: &str) -> String {
        scratch.run_config_ok_with_env(config, &[], &self.env())
    }

    /// Copies the blobs under `prefix` into the scratch folder's `to`.
    fn download(&self, scratch: &Scratch, prefix: &str, to: &str) -> std::path::PathBuf {
        let folder = scratch.path(to);
        self.blobs(&["download", prefix, &folder.display().to_string()]);
        folder
    }
}

/// Writes `NAME.toml` reading `az://exdep/landing/` and writing under `az://exdep/ROOT/`.
fn azure_config(scratch: &Scratch, name: &str, root: &str, format: &str) {
    let tables = configs_dir();
    scratch.write(
        &format!("{name}.toml"),
        &format!(
            "years = [2019, 2020, 2021]\n\
             output = \"az://{CONTAINER}/{root}/exdep\"\n\
             warehouse = \"az://{CONTAINER}/{root}/_exdep_warehouse\"\n\
             table-format = \"{format}\"\n\n\
             [[inputs]]\nlocation = \"az://{CONTAINER}/landing/\"\nformat = \"canonical-csv\"\n\n\
             [tables]\n\
             hs-chapters = \"{t}/hs_chapters.csv\"\n\
             partner-regions = \"{t}/partner_regions.csv\"\n\
             provinces = \"{t}/provinces.csv\"\n\
             exchange-rates = \"{t}/cny_per_usd.csv\"\n",
            t = tables.display()
        ),
    );
}

#[test]
#[ignore = "needs azurite-blob and python3 with azure-storage-blob, deltalake and polars"]
fn the_pipeline_reads_and_writes_azure_blob_storage_in_both_formats() {
    let scratch = Scratch::new();
    let azurite = Azurite::start(&scratch);
    scratch.generate_years(2019..=2021, 3000, &["--dirty-every", "200"]);
    let inputs: Vec<String> = (2019..=2021)
        .map(|year| {
            let file = scratch.path(&format!("inputs/exports-{year}.csv"));
            file.display().to_string()
        })
        .collect();
    let mut upload = vec!["upload", "landing"];
    upload.extend(inputs.iter().map(String::as_str));
    azurite.blobs(&upload);
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    // The quarantine's rows name their source file's URL, local or `az://`: it is compared
    // by its rows' count.
    let local = tables_but_rejects(&scratch.path("out"));

    // Plain Parquet: the same bytes as the local run's, and an unchanged rerun writes
    // nothing.
    azure_config(&scratch, "parquet", "lake", "parquet");
    azurite.run(&scratch, "parquet.toml");
    let lake = azurite.download(&scratch, "lake/exdep", "lake");
    let published = tables_but_rejects(&lake);
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        local.keys().collect::<Vec<_>>()
    );
    for (relative, bytes) in &published {
        assert!(bytes == &local[relative], "{relative} differs");
    }
    let local_rows = read_published("rows", &scratch.path("out"));
    let rejects = |rows: &BTreeMap<String, Value>| rows["rejects"].as_array().unwrap().len();
    assert_eq!(
        rejects(&read_published("rows", &lake)),
        rejects(&local_rows)
    );
    assert!(
        azurite
            .run(&scratch, "parquet.toml")
            .contains("nothing changed")
    );

    // Delta: the tables read the same rows as the local Parquet output's.
    azure_config(&scratch, "delta", "delta", "delta");
    azurite.run(&scratch, "delta.toml");
    let mut delta_rows = read_published("rows", &azurite.download(&scratch, "delta/exdep", "d"));
    let mut local_rows = local_rows;
    assert_eq!(rejects(&delta_rows), rejects(&local_rows));
    delta_rows.remove("rejects");
    local_rows.remove("rejects");
    assert!(delta_rows == local_rows, "Delta on Azure reads other rows");

    // Two runs at once on a fresh output: the lease's conditional writes let one publish
    // and refuse the other.
    azure_config(&scratch, "twice", "twice", "parquet");
    let start = || {
        (azurite.exdep(&scratch, &["run", "--config", "twice.toml", "--quiet"]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert_one_refused_on_the_lock(start, 0, "_exdep.lock is held by the run on host");
    let published = tables_but_rejects(&azurite.download(&scratch, "twice/exdep", "twice"));
    assert!(
        published == local,
        "the run that published wrote the local run's tables"
    );
}

/// The Parquet files of the tables under `output` (see [`table_files`]) but the quarantine's.
fn tables_but_rejects(output: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = table_files(output);
    files.retain(|relative, _| !relative.starts_with("rejects/"));
    files
}
