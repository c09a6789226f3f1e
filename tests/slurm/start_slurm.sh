#!/bin/bash
# Starts a real single-node Slurm (slurmctld + slurmd on this host, munge auth) for
# tests/slurm.rs, and waits until `sinfo` shows the node usable. Idempotent: a Slurm that already
# answers with a usable node is left alone; daemons already running are not restarted; a
# slurm.conf we did not write is never overwritten. Needs root (apt-get, daemons).
#
# Installs slurm-wlm and munge with apt-get when slurmctld/sbatch are missing (Debian/Ubuntu).
# State, spool, pid and log files live under $RIDE_SLURM_STATE (default /var/spool/ride-slurm).
# Exit status 0 only when the node is usable; on failure the daemon logs are printed.
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

STATE=${RIDE_SLURM_STATE:-/var/spool/ride-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by ride tests/slurm/start_slurm.sh"
HOST=$(hostname -s)
WAIT_S=${RIDE_SLURM_WAIT_S:-90}

# is a process with this exact name running? (no pgrep: procps is not in minimal images)
running() {
    local f c
    for f in /proc/[0-9]*/comm; do
        read -r c <"$f" 2>/dev/null || continue
        [ "$c" = "$1" ] && return 0
    done
    return 1
}

say() { echo "start_slurm: $*" >&2; }

dump_logs() {
    for f in "$STATE"/slurmctld.log "$STATE"/slurmd.log "$STATE"/slurmctld.out "$STATE"/slurmd.out \
        "$STATE"/munged.out /var/log/munge/munged.log; do
        if [ -s "$f" ]; then
            echo "----- $f (last 40 lines) -----" >&2
            tail -n 40 "$f" >&2 || true
        fi
    done
    if [ -f "$CONF" ]; then
        echo "----- $CONF -----" >&2
        cat "$CONF" >&2 || true
    fi
}

die() {
    say "FAILED: $*"
    dump_logs
    exit 1
}

# usable node states: anything sinfo prints that can run jobs
node_usable() {
    local states
    states=$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null) || return 1
    grep -Eq '^(idle|mixed|allocated|completing)$' <<<"$states"
}

ours_or_none() { [ ! -f "$CONF" ] || head -n 1 "$CONF" | grep -qxF "$MARK"; }

# 0. An already working Slurm (ours from an earlier run, or someone else's): use it as is. (Asking
# sinfo with no controller up takes ~10 s of retries, so only when there may be one.)
if command -v sinfo >/dev/null && command -v sbatch >/dev/null &&
    { running slurmctld || ! ours_or_none; } && node_usable; then
    say "Slurm already running: $(sinfo -h -N -o '%N %T %c CPUs' | tr '\n' ' ')"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root to install and start Slurm (set RIDE_SKIP_SLURM=1 to skip)"
mkdir -p "$STATE"

# 1. Install.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurmctld/sbatch/munged missing and no apt-get to install them"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurm-wlm munge)
    updated=0
    if ! apt-cache show slurm-wlm >/dev/null 2>&1 || ! apt-cache show munge >/dev/null 2>&1; then
        say "apt-get update"
        apt-get update -qq >"$STATE/apt.log" 2>&1 || { cat "$STATE/apt.log" >&2; die "apt-get update failed"; }
        updated=1
    fi
    say "apt-get install ${pkgs[*]}"
    t0=$SECONDS
    if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$STATE/apt.log" 2>&1; then
        [ "$updated" = 0 ] || { tail -n 40 "$STATE/apt.log" >&2; die "apt-get install failed"; }
        say "apt-get install failed: apt-get update (stale package lists?) and again"
        apt-get update -qq >"$STATE/apt.log" 2>&1 || { cat "$STATE/apt.log" >&2; die "apt-get update failed"; }
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$STATE/apt.log" 2>&1 ||
            { tail -n 40 "$STATE/apt.log" >&2; die "apt-get install failed"; }
    fi
    say "installed in $((SECONDS - t0)) s"
fi
say "$(slurmctld -V)"

# 2. Munge: a key, then munged (as the munge user when there is one). A working munge is left alone.
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok && running munged; then
    sleep 1 # just started (by the package's postinst, say)
fi
if ! munge_ok; then
    MUNGE_USER=root
    if id munge >/dev/null 2>&1; then MUNGE_USER=munge; fi
    mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown "$MUNGE_USER:" /etc/munge /etc/munge/munge.key /var/lib/munge /var/log/munge /run/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    chmod 0400 /etc/munge/munge.key
    say "starting munged"
    if [ "$MUNGE_USER" = root ]; then
        munged --force </dev/null >>"$STATE/munged.out" 2>&1 || die "munged did not start"
    else
        runuser -u munge -- munged </dev/null >>"$STATE/munged.out" 2>&1 || die "munged did not start"
    fi
    for _ in $(seq 50); do
        munge_ok && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munge does not work"
fi

# 3. slurm.conf (ours: rewritten when the node changed; someone else's: left alone).
node_line=$(slurmd -C 2>/dev/null | grep '^NodeName=' | head -n 1 || true)
if [ -z "$node_line" ]; then
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    node_line="NodeName=$HOST CPUs=$(nproc) RealMemory=$mem"
fi
# slurmd -C may print a long host name; the node must be the short name slurmd uses
node_line=$(sed -E "s/^NodeName=[^ ]+/NodeName=$HOST/; s/ UpTime=.*//" <<<"$node_line")
conf="$MARK
ClusterName=ride
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=600
$node_line State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP"
mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
changed=0
if ! ours_or_none; then
    say "$CONF was not written by this script: using it as is"
elif [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$conf" ]; then
    say "writing $CONF ($node_line)"
    printf '%s\n' "$conf" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
    changed=1
fi

# 4. Daemons (logs in $STATE; stdio detached so callers' pipes close).
if ! running slurmctld; then
    say "starting slurmctld"
    slurmctld </dev/null >>"$STATE/slurmctld.out" 2>&1 || die "slurmctld did not start"
elif [ "$changed" = 1 ]; then
    say "slurmctld running: scontrol reconfigure"
    scontrol reconfigure || true
fi
for _ in $(seq 100); do
    timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && break
    sleep 0.2
done
timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer"
if ! running slurmd; then
    say "starting slurmd"
    slurmd </dev/null >>"$STATE/slurmd.out" 2>&1 || die "slurmd did not start"
fi

# 5. Wait for the node (resume it once if a previous run left it down or drained).
resumed=0
t0=$SECONDS
while ((SECONDS - t0 < WAIT_S)); do
    if node_usable; then
        say "ready in $((SECONDS - t0)) s: $(sinfo -h -N -o '%N %T %c CPUs %m MB' | tr '\n' ' ')"
        exit 0
    fi
    state=$(timeout 10 sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null || true)
    if [ "$resumed" = 0 ] && ((SECONDS - t0 >= 3)) && grep -Eq 'down|drain|fail' <<<"$state"; then
        say "node is $state: resuming it"
        scontrol update NodeName="$HOST" State=RESUME || true
        resumed=1
    fi
    sleep 0.5
done
sinfo -N -l >&2 || true
scontrol show node "$HOST" >&2 || true
die "node not usable after $WAIT_S s"
