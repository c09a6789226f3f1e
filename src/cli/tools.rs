//! `ride bench`, `ride data` and `ride convert`.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `ride bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Thread counts to measure, e.g. `--threads 1,2` (default: all cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// One JSON object per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only kernels whose name contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Minimum measuring time per kernel in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub min_time: f64,
    /// Output folder for roofline.csv and roofline.json.
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
    /// Instead of measuring, collect criterion's results from this folder (e.g.
    /// target/criterion) into OUT/criterion.csv.
    #[arg(long)]
    pub harvest: Option<PathBuf>,
}

/// `ride bench`: the roofline, or criterion's results harvested into a CSV.
pub fn bench(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        threads,
        json,
        filter,
        min_time,
        out,
        harvest,
    } = args;
    match harvest {
        Some(dir) => {
            let csv = out.join("criterion.csv");
            let rows = ride::bench::criterion_harvest::harvest(&dir, &csv)?;
            println!("{} criterion results → {}", rows.len(), csv.display());
            Ok(())
        }
        None => ride::bench::roofline::run(&ride::bench::roofline::Options {
            threads,
            json,
            filter,
            min_time,
            out,
        }),
    }
}
/// Arguments of `ride data`.
#[derive(clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub action: DataAction,
}

/// `ride data fetch|verify`.
pub fn data(args: DataArgs, data_dir: &Path) -> Result<()> {
    data_action(data_dir, args.action)
}
/// Arguments of `ride convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// The data domain to record (bsds300, deadleaves, brodatz, gray8, vanhateren,
    /// bsds300_patches): needed for files that do not record one (format-1 files); the
    /// original code's npz defaults to bsds300.
    #[arg(long)]
    pub domain: Option<ride::io::preprocessing::Domain>,
}

/// `ride convert`.
pub fn convert(args: ConvertArgs, _data_dir: &Path) -> Result<()> {
    let ConvertArgs { model, out, domain } = args;
    if out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        anyhow::bail!(
            "--out {}: convert writes our safetensors format; name the file *.safetensors",
            out.display()
        );
    }
    let m = ride::io::modelfile::load_as(&model, domain)?;
    ride::io::modelfile::save_safetensors(&m, &out)?;
    println!("wrote {} ({} parameters)", out.display(), m.num_params());
    Ok(())
}

/// `ride data fetch|verify`.
fn data_action(data_dir: &std::path::Path, action: DataAction) -> Result<()> {
    use ride::data::fetch::{official, verify_all};
    let names = |only: &[String]| -> Vec<String> {
        if only.is_empty() {
            official::NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            only.to_vec()
        }
    };
    match action {
        DataAction::Fetch {
            mirror,
            only,
            quiet,
        } => {
            for name in names(&only) {
                let ds = official::dataset(&name, &mirror)?;
                let t0 = Instant::now();
                let r = ride::data::fetch::fetch(&ds, data_dir, quiet)?;
                println!(
                    "{name}: {} files verified ({} already there, {} fetched, {} derived) in {:.1} s → {}",
                    r.already_present + r.fetched + r.derived,
                    r.already_present,
                    r.fetched,
                    r.derived,
                    t0.elapsed().as_secs_f64(),
                    data_dir.join(&name).display()
                );
                if let Some((p, why)) = r.unavailable.first() {
                    println!(
                        "{name}: {} files not fetched ({why}), e.g. {p}",
                        r.unavailable.len()
                    );
                }
            }
            Ok(())
        }
        DataAction::Verify { only } => {
            let mut all_ok = true;
            for name in names(&only) {
                let ds = official::dataset(&name, &[])?;
                let (ok, bad) = verify_all(&ds, data_dir)?;
                println!("{name}: {ok} of {} files verified", ds.files.len());
                for p in bad.iter().take(10) {
                    println!("  missing or altered: {}", p.display());
                }
                all_ok &= bad.is_empty();
            }
            if !all_ok {
                anyhow::bail!("some files are missing or do not match their SHA-256 sums");
            }
            Ok(())
        }
    }
}

#[derive(clap::Subcommand)]
pub enum DataAction {
    /// Download what is missing and verify it.
    Fetch {
        /// Mirror base URLs tried before the official hosts, laid out like DATA_DIR
        /// (MIRROR/bsds300/images/test/3096.jpg); comma-separated in RIDE_DATA_MIRROR.
        #[arg(long, env = "RIDE_DATA_MIRROR", value_delimiter = ',')]
        mirror: Vec<String>,
        /// Only these data sets (bsds300, vanhateren, brodatz); default all.
        #[arg(long)]
        only: Vec<String>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Check every file of the data sets against its SHA-256 sum.
    Verify {
        #[arg(long)]
        only: Vec<String>,
    },
}
