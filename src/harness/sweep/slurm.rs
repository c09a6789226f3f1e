//! `ride sweep --emit-slurm`: the array job (one task per cell, one array per level of grown
//! cells), the merge step and `submit.sh`.

use crate::io::files::write_atomic;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// `p` as an absolute path for a Slurm script: the paths go into shell scripts and #SBATCH
/// lines, so only plain characters are allowed.
pub fn slurm_path(p: &Path) -> Result<String> {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let s = abs
        .to_str()
        .map(str::to_string)
        .with_context(|| format!("{}: not UTF-8, cannot go into a Slurm script", p.display()))?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=,:@".contains(c))
    {
        bail!("{s}: only letters, digits and /._-+=,:@ can go into a Slurm script (no spaces, quotes or shell characters)");
    }
    Ok(s)
}

/// Writes a Slurm array job (one task per cell) and its merge step into `dir`. With grown
/// cells, `submit.sh` submits the array once per level (`levels`), each level after the one
/// before has finished (`afterok`).
pub fn emit_slurm(
    config: &Path,
    levels: &[Vec<usize>],
    data_dir: &Path,
    out: &Path,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the ride binary")?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let safe = slurm_path;
    let common = format!(
        "'{}' --data-dir '{}' sweep --config '{}' --out '{}'",
        safe(&exe)?,
        safe(data_dir)?,
        safe(config)?,
        safe(out)?
    );
    safe(dir)?;
    let cells: usize = levels.iter().map(Vec::len).sum();
    let array = format!(
        "#!/bin/bash\n#SBATCH --job-name=ride-sweep\n#SBATCH --array=0-{}\n#SBATCH --cpus-per-task=2\n#SBATCH --output={}/slurm-%A_%a.log\nset -euo pipefail\n{common} --cell \"$SLURM_ARRAY_TASK_ID\"\n",
        cells.saturating_sub(1),
        abs(dir).display()
    );
    let merge = format!("#!/bin/bash\n#SBATCH --job-name=ride-sweep-merge\n#SBATCH --output={}/slurm-merge-%j.log\nset -euo pipefail\n{common} --merge\n", abs(dir).display());
    // Extra arguments go to both sbatch calls (they override the #SBATCH lines), e.g.
    // `./submit.sh --partition=short`; the job ids are printed for squeue/scancel.
    let submit = if levels.len() <= 1 {
        "#!/bin/bash\n# Submits the array job, then the merge step once every task has finished.\n# Arguments are passed to both sbatch calls, e.g. ./submit.sh --partition=short\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\njid=$(sbatch --parsable \"$@\" sweep.sbatch)\njid=${jid%%;*}\necho \"sweep array job $jid\"\nmid=$(sbatch --parsable \"$@\" --dependency=afterok:$jid merge.sbatch)\necho \"merge job ${mid%%;*}\"\n".to_string()
    } else {
        // grown cells start from the models of the level before: one array job per level
        let mut t = "#!/bin/bash\n# Submits the array job once per level of grown cells (each level after the one before),\n# then the merge step. Arguments are passed to every sbatch call, e.g. ./submit.sh --partition=short\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\ndep=()\n".to_string();
        for (d, level) in levels.iter().enumerate() {
            let list: Vec<String> = level.iter().map(|i| i.to_string()).collect();
            t += &format!(
                "jid=$(sbatch --parsable \"$@\" ${{dep[@]+\"${{dep[@]}}\"}} --array={} sweep.sbatch)\njid=${{jid%%;*}}\necho \"sweep array job $jid (level {d})\"\ndep=(--dependency=afterok:$jid)\n",
                list.join(",")
            );
        }
        t += "mid=$(sbatch --parsable \"$@\" ${dep[@]+\"${dep[@]}\"} merge.sbatch)\necho \"merge job ${mid%%;*}\"\n";
        t
    };
    for (name, text) in [
        ("sweep.sbatch", array),
        ("merge.sbatch", merge),
        ("submit.sh", submit),
    ] {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}
