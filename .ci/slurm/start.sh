#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (Debian, as root, without systemd) for the tests that submit
# iota2's workers through the real sbatch (tests/core/test_slurm_cluster.py).
#
#   bash .ci/slurm/start.sh        # installs slurmctld, slurmd and munge if missing, starts them, waits for the node
#
# Does nothing when the node already answers. Exits non-zero, with the reason and the end of the daemons' logs,
# when Slurm cannot be installed or started. Daemons and jobs run as root; jobs inherit the submitter's
# environment (sbatch's default --export=ALL), and dask-jobqueue's job scripts call the venv's python by its
# absolute path.
#
# Environment: IOTA2_SLURM_STATE (state and spool folders, default /var/lib/slurm-iota2),
# IOTA2_SLURM_LOG (daemon logs, default /var/log/slurm-iota2), IOTA2_SLURM_WAIT (seconds to wait for the
# node, default 60).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${IOTA2_SLURM_STATE:-/var/lib/slurm-iota2}"
logs="${IOTA2_SLURM_LOG:-/var/log/slurm-iota2}"
wait_s="${IOTA2_SLURM_WAIT:-60}"
node="$(hostname -s)"

fail() {
    echo "slurm: error: $*" >&2
    for log in "$logs/slurmctld.log" "$logs/slurmd.log" /var/log/munge/munged.log; do
        if [ -s "$log" ]; then
            echo "--- last lines of $log" >&2
            tail -n 15 "$log" >&2
        fi
    done
    exit 1
}

node_state() {  # the node's state as sinfo sees it ("" when the controller does not answer)
    timeout 10 sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1 || true
}

if command -v sinfo >/dev/null 2>&1; then
    case "$(node_state)" in
        idle*|mixed*|allocated*|completing*)
            echo "slurm: node $node already up ($(node_state))"
            exit 0 ;;
    esac
fi

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages and starts slurmctld, slurmd and munged)"

# Packages (Debian's slurm-wlm 22.05 and munge), only when missing.
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 \
        || ! command -v munged >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1; then
    echo "slurm: installing slurmctld slurmd munge"
    apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd munge \
        slurm-client >/dev/null || fail "apt-get install slurmctld slurmd munge failed"
fi

# munge: a key, then the daemon under its own user (it refuses to run as root).
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
if id munge >/dev/null 2>&1; then
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
fi
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged || fail "munged did not start"
    else
        munged --force || fail "munged did not start"
    fi
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || fail "munged started but does not answer (munge -n | unmunge)"
fi

# slurm.conf: this machine as the only node, with the CPUs and memory slurmd finds.
mkdir -p /etc/slurm "$state/slurmctld" "$state/slurmd" "$logs" || fail "cannot create $state or $logs (set IOTA2_SLURM_STATE / IOTA2_SLURM_LOG)"
hardware="$(slurmd -C 2>/dev/null | head -n 1 | sed -e 's/^NodeName=[^ ]* *//')"
case "$hardware" in
    *CPUs=*RealMemory=*) ;;
    *) fail "slurmd -C did not describe this machine (got: '$hardware')" ;;
esac
sed -e "s|@HOST@|$node|g" -e "s|@STATE@|$state|g" -e "s|@LOG@|$logs|g" -e "s|@NODE@|$hardware|" \
    "$here/slurm.conf.in" > /etc/slurm/slurm.conf.new
if ! cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
    mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
    changed=1
else
    rm -f /etc/slurm/slurm.conf.new
    changed=0
fi

# The daemons (each forks into the background); a changed configuration reaches running ones.
if ! pgrep -x slurmctld >/dev/null; then
    slurmctld || fail "slurmctld did not start"
elif [ "$changed" = 1 ]; then
    scontrol reconfigure || true
fi
if ! pgrep -x slurmd >/dev/null; then
    slurmd || fail "slurmd did not start"
fi

# Wait for the node; one left down or drained by an earlier run is resumed.
deadline=$((SECONDS + wait_s))
while :; do
    current="$(node_state)"
    case "$current" in
        idle*|mixed*|allocated*|completing*)
            echo "slurm: node $node up ($current), $(sinfo -h -N -n "$node" -o '%c CPUs, %m MB')"
            exit 0 ;;
        down*|drain*|drained*)
            scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "node $node not idle after ${wait_s} s (sinfo: '${current:-no answer}')"
    sleep 1
done
