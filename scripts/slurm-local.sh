#!/usr/bin/env bash
# A real Slurm 22.05 cluster with accounting on this one machine, for tests and
# for trying pytest-hetero's Slurm backend (Debian 12, as root).
#
#   scripts/slurm-local.sh up       install (apt) if needed, configure, start; idempotent
#   scripts/slurm-local.sh down     stop every daemon by its recorded PID
#   scripts/slurm-local.sh status   which daemons run, and what sinfo says
#
# Daemons are started by hand (no systemd): munged, mariadbd, slurmdbd,
# slurmctld, and one slurmd per node. Each PID is recorded under $STATE_DIR and
# `down` stops exactly those processes. The configuration is the system one,
# /etc/slurm, so plain `sinfo`, `sbatch` and `sacct` talk to this cluster.
#
# Nodes: <host> in partition `debug` (the default), and <host>-2, a second
# slurmd on the same machine, so that `multi` (both nodes) can run real
# multi-node jobs (srun across nodes, torchrun rendezvous) and a node can fail
# without touching jobs in `debug`.
#
# Environment (optional):
#   SLURM_LOCAL_CPUS    CPUs each node advertises (default 16; oversubscribes a
#                       small machine so that concurrent benchmarks can run)
#   SLURM_LOCAL_MEM_MB  memory each node advertises (default: 90% of the machine's)
set -euo pipefail

CONF_DIR=/etc/slurm
STATE_DIR=/run/slurm-local
LOG_DIR=/var/log/slurm
CLUSTER=hetero
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=slurm-local-only
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
NODE=$(hostname -s)
NODES=("$NODE" "$NODE-2")
SLURMD_PORTS=(6818 6828)
SLURMD_PIDS=("slurmd-$NODE" "slurmd-$NODE-2")  # pid file names; plain "slurmd" was an older layout

log() { printf 'slurm-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- install ---------------------------------------------------------------

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages)
    [ -z "$missing" ] && return 0
    log "installing:" $missing
    # Keep maintainer scripts from starting services: we start them ourselves.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 $missing >/dev/null
    [ "$own_policy" = 1 ] && rm -f "$policy"
    return 0
}

# --- configuration ---------------------------------------------------------

ensure_hostname() {
    getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >>/etc/hosts
}

mem_mb() {
    if [ -n "${SLURM_LOCAL_MEM_MB:-}" ]; then echo "$SLURM_LOCAL_MEM_MB"; return; fi
    awk '/^MemTotal:/ { printf "%d\n", $2 / 1024 * 0.9 }' /proc/meminfo
}

write_slurm_conf() {
    local cpus=${SLURM_LOCAL_CPUS:-16}
    cat >"$CONF_DIR/slurm.conf.new" <<EOF
# Written by pytest-hetero scripts/slurm-local.sh: a single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd/%n
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd-%n.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
# cgroups are a v1/v2 mix on these machines: no cgroup plugins.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job without --mem takes the whole node and jobs serialise.
DefMemPerCPU=256
# Advertise the configured CPUs even where the machine has fewer.
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
ReturnToService=2
KillWait=5
MinJobAge=300
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
NodeName=${NODES[0]} NodeHostname=$NODE Port=${SLURMD_PORTS[0]} CPUs=$cpus RealMemory=$(mem_mb) State=UNKNOWN
NodeName=${NODES[1]} NodeHostname=$NODE Port=${SLURMD_PORTS[1]} CPUs=$cpus RealMemory=$(mem_mb) State=UNKNOWN
PartitionName=debug Nodes=${NODES[0]} Default=YES MaxTime=INFINITE State=UP
PartitionName=multi Nodes=${NODES[0]},${NODES[1]} MaxTime=INFINITE State=UP
EOF
    if cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"; then
        rm -f "$CONF_DIR/slurm.conf.new"
    else
        mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
        # A running controller would keep the old settings: restart it with the node daemons.
        stop_group slurmd "${SLURMD_PIDS[@]}" slurmctld
    fi
}

write_slurmdbd_conf() {
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
# Written by pytest-hetero scripts/slurm-local.sh.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$STATE_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    chown slurm:slurm "$CONF_DIR/slurmdbd.conf"
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

prepare_dirs() {
    local node
    mkdir -p "$CONF_DIR" "$STATE_DIR" "$LOG_DIR" /var/lib/slurm/slurmctld /run/munge /run/mysqld
    for node in "${NODES[@]}"; do mkdir -p "/var/lib/slurm/slurmd/$node"; done
    chown -R slurm:slurm /var/lib/slurm "$LOG_DIR" "$STATE_DIR"
    chown munge:munge /run/munge
    chown mysql:mysql /run/mysqld
    [ -s /etc/munge/munge.key ] || { mungekey --create --force && chown munge:munge /etc/munge/munge.key; }
}

# --- processes -------------------------------------------------------------

pid_of() { cat "$STATE_DIR/$1.pid" 2>/dev/null || true; }

running() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit_s=$1 what=$2 waited_ds=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$waited_ds" -ge $((limit_s * 10)) ] && die "$what not ready after ${limit_s}s (logs: $LOG_DIR)"
        sleep 0.1
        waited_ds=$((waited_ds + 1))
    done
}

start_munge() {
    running munged && return 0
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 10 munged test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
}

start_mariadb() {
    running mariadb && return 0
    setsid /usr/sbin/mariadbd --user=mysql --socket=/run/mysqld/mysqld.sock \
        --pid-file=/run/mysqld/mysqld.pid --skip-networking=0 --bind-address=127.0.0.1 \
        >>"$LOG_DIR/mariadb.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/mariadb.pid"
    wait_for 30 mariadb mariadb -e 'SELECT 1'
    mariadb <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    running slurmdbd && return 0
    /usr/sbin/slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
}

start_slurmctld() {
    running slurmctld && return 0
    /usr/sbin/slurmctld
    wait_for 30 slurmctld scontrol ping
}

start_slurmds() {
    local node
    for node in "${NODES[@]}"; do
        running "slurmd-$node" || /usr/sbin/slurmd -N "$node"
    done
    wait_for 30 "the nodes ${NODES[*]}" nodes_usable
}

node_state() { sinfo -h -n "$1" -o %T 2>/dev/null | head -n1; }

nodes_usable() {
    local node ok=0
    for node in "${NODES[@]}"; do
        case "$(node_state "$node")" in
            idle | mixed | allocated | completing) ;;
            down* | drain* | fail*) scontrol update nodename="$node" state=resume >/dev/null 2>&1; ok=1 ;;
            *) ok=1 ;;
        esac
    done
    return "$ok"
}

stop_group() {  # stop_group NAME...: SIGTERM their recorded PIDs together, SIGKILL after 15 s
    local name pid pids=() waited_ds=0
    for name in "$@"; do
        pid=$(pid_of "$name")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" && pids+=("$pid") && log "stopping $name (pid $pid)"
        fi
        rm -f "$STATE_DIR/$name.pid"
    done
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$waited_ds" -lt 150 ]; do sleep 0.1; waited_ds=$((waited_ds + 1)); done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
    return 0
}

# --- commands --------------------------------------------------------------

cmd_up() {
    [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts system daemons)"
    install_packages
    ensure_hostname
    prepare_dirs
    write_slurm_conf
    write_slurmdbd_conf
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmds
    log "up: nodes ${NODES[*]} are usable; partitions debug (${NODES[0]}) and multi (both); config in $CONF_DIR/slurm.conf and $CONF_DIR/slurmdbd.conf, logs in $LOG_DIR"
    echo "SLURM_CONF=$CONF_DIR/slurm.conf"
}

cmd_down() {
    # Controller and node first (they report to slurmdbd), then accounting, then storage and auth.
    stop_group slurmd "${SLURMD_PIDS[@]}" slurmctld
    stop_group slurmdbd
    stop_group mariadb munged
    log "down"
}

cmd_status() {
    local name rc=0
    for name in munged mariadb slurmdbd slurmctld "${SLURMD_PIDS[@]}"; do
        if running "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; rc=1; fi
    done
    echo "config: $CONF_DIR/slurm.conf"
    sinfo 2>&1 || rc=1
    return "$rc"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
