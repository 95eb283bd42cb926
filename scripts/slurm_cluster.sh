#!/usr/bin/env bash
# A throwaway single-node SLURM cluster WITH accounting, for testing the workflow's SLURM profile
# as a user gets it (job states from sacct, accounts checked with sacctmgr).
#
#   scripts/slurm_cluster.sh install   # apt-get install the Debian packages below (root)
#   scripts/slurm_cluster.sh start     # configs, munged, MariaDB, slurmdbd, slurmctld, slurmd;
#                                      # the cluster, account and user in the accounting database
#   scripts/slurm_cluster.sh status    # sinfo, the jobs slurmctld remembers, sacct's view
#   scripts/slurm_cluster.sh stop      # stop the daemons this script started (by their pid files)
#
# Packages (Debian 12, Slurm 22.05, MariaDB 10.11): slurmctld slurmd slurm-client slurmdbd munge
# mariadb-server. Everything runs as root from private folders under REPRO_SLURM_DIR; apt's own
# services are never started (this script starts each daemon itself, without systemd).
#
# The node is this machine: partitions `cpu` (default) and `gpu`, named like the placeholders of
# profiles/slurm/profile.yaml, and `urgent` (same node, higher priority tier) whose jobs preempt
# `gpu` jobs (PreemptMode=REQUEUE, GraceTime 60 s: SIGTERM, then SIGKILL 60 s later, then the
# job is queued again). REPRO_SLURM_GPUS fake GPUs: gres.conf lists placeholder device files,
# which is enough for slurmd to register gres/gpu on a machine without GPUs; jobs asking for
# --gpus=N or --gres=gpu:N are scheduled against them. The node has the feature `gpu80gb` (what
# a cluster's 80 GB GPU nodes carry, asked for with --constraint).
#
# Accounting: MariaDB (TCP on 127.0.0.1 only, a private data folder) behind slurmdbd; the cluster
# `repro`, the account `repro` and the user root (default account `repro`) are created with
# sacctmgr, and associations are enforced (a job naming another account is refused).
#
# Settings (environment):
#   REPRO_SLURM_DIR   state folder: spool, logs, pid files, munge key, database
#                     (default /tmp/repro-slurm)
#   REPRO_SLURM_PORT  slurmctld port; slurmd, slurmdbd and MariaDB use the next three
#                     (default 7817)
#   REPRO_SLURM_GPUS  fake GPUs on the node (default 2)
#   REPRO_SLURM_CPUS  CPUs the node offers (default: nproc, at least 12: a 2-GPU job asks for 4
#                     per GPU, and other jobs run beside it; more than the machine has is fine
#                     for tests: jobs share cores)
#
# Why the config is written to /etc/slurm/slurm.conf and not kept private behind SLURM_CONF:
# Snakemake's SLURM jobstep drops every SLURM_* variable (SLURM_CONF included) before its inner
# `srun`, which then reads the default path. So only one such cluster can run on a machine at a
# time. This script never replaces a /etc/slurm/slurm.conf it did not write, and refuses to start
# while another of its clusters is running.
#
# Exit codes: 0 ok, 2 usage, 3 the machine is busy (foreign or running cluster config),
# 4 SLURM, munge or MariaDB not installed / not root, 5 the cluster did not come up (logs are
# printed, and what was started is stopped again).
set -euo pipefail

ACTION=${1:-}
DIR=${REPRO_SLURM_DIR:-/tmp/repro-slurm}
PORT=${REPRO_SLURM_PORT:-7817}
GPUS=${REPRO_SLURM_GPUS:-2}
CPUS=${REPRO_SLURM_CPUS:-$(( $(nproc) > 12 ? $(nproc) : 12 ))}
DBD_PORT=$((PORT + 2))
DB_PORT=$((PORT + 3))
ETC=/etc/slurm
MARK="# written by scripts/slurm_cluster.sh, state in"
NODE=localhost
CLUSTER=repro
ACCOUNT=repro
# the database password of slurmdbd's MariaDB user; MariaDB listens on 127.0.0.1 only
DB_PASS=repro-test-only
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
# start order; stop goes the other way
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

say() { printf '[slurm_cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

installed() {
  local b
  for b in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db; do
    command -v "$b" >/dev/null || return 1
  done
}

do_install() {
  if installed; then say "already installed: $(slurmd -V), $(mariadbd --version | cut -d' ' -f4)"; return; fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "cannot install: needs root and apt-get (install ${PACKAGES[*]} by hand)"; exit 4
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's policy-rc.d in containers keeps apt from starting the services; `start` does it.
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  say "installed: $(slurmd -V)"
}

# Refuse to touch a slurm.conf that belongs to someone else, or to a cluster still running.
check_free() {
  local conf=$ETC/slurm.conf owner d
  [[ -e $conf ]] || return 0
  if ! head -n1 "$conf" | grep -q "^$MARK "; then
    say "$conf exists and was not written by this script: refusing to replace it"; exit 3
  fi
  owner=$(head -n1 "$conf" | sed "s|^$MARK ||")
  for d in "${DAEMONS[@]}"; do
    if alive "$owner/run/$d.pid"; then
      if [[ $owner == "$DIR" ]]; then say "already running (state $DIR)"; exit 0; fi
      say "another test cluster is running (state $owner): stop it first"; exit 3
    fi
  done
}

write_config() {
  local mem files=() i
  # RealMemory in MB: what the machine has less 2 GB, and at least 32 GB, so that the profile's
  # requests fit on small CI machines too (memory is not enforced: no cgroups)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
  (( mem >= 32768 )) || mem=32768
  mkdir -p "$DIR"/{etc,spool/ctld,spool/d,log,run,munge,db}
  cat >"$DIR/etc/slurm.conf" <<EOF
$MARK $DIR
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
MpiDefault=none
# no cgroups needed (containers, sandboxes)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# accounting through slurmdbd: sacct answers from the database; jobs need an association
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=$DBD_PORT
# for slurmdbd this names the munge socket of the clients (sacct, sacctmgr, slurmctld)
AccountingStoragePass=$DIR/munge/munge.socket
AccountingStorageEnforce=associations,limits,qos
AccountingStorageTRES=gres/gpu
# keep each job's comment (Snakemake's rule and wildcards) for sacct
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# jobs of a higher priority tier preempt: SIGTERM, GraceTime, SIGKILL, back in the queue
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
ReturnToService=2
# take CPUs and RealMemory from this file, not from the hardware (see above)
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
# seconds between SIGTERM and SIGKILL when a job hits its time limit or is cancelled
KillWait=10
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmdSpoolDir=$DIR/spool/d
StateSaveLocation=$DIR/spool/ctld
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem Gres=gpu:$GPUS Feature=gpu80gb State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=60
PartitionName=urgent Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=2
EOF
  # Fake GPUs: without File= entries slurmd reports 0 GPUs and the node is drained.
  for ((i = 0; i < GPUS; i++)); do files+=("$DIR/run/fakegpu$i"); touch "$DIR/run/fakegpu$i"; done
  {
    echo "$MARK $DIR"
    for f in "${files[@]}"; do echo "NodeName=$NODE Name=gpu File=$f"; done
  } >"$DIR/etc/gres.conf"
  cat >"$DIR/etc/slurmdbd.conf" <<EOF
$MARK $DIR
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=$NODE
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
EOF
  chmod 600 "$DIR/etc/slurmdbd.conf"
  mkdir -p "$ETC"
  cp "$DIR/etc/slurm.conf" "$DIR/etc/gres.conf" "$DIR/etc/slurmdbd.conf" "$ETC/"
  say "wrote $ETC/{slurm,gres,slurmdbd}.conf: $CPUS CPUs, ${mem} MB, $GPUS fake GPUs," \
      "ports $PORT-$DB_PORT"
}

wait_port() {  # port, seconds
  local _
  for _ in $(seq $(($2 * 5))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

start_munge() {
  local key=$DIR/munge/munge.key sock=$DIR/munge/munge.socket
  alive "$DIR/run/munged.pid" && return
  if [[ ! -s $key ]]; then head -c 1024 /dev/urandom >"$key"; fi
  chmod 711 "$DIR/munge"; chmod 400 "$key"
  # --force: accept a key and socket outside munge's usual, stricter locations
  munged --force --socket="$sock" --key-file="$key" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed"
  for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
  munge -n -S "$sock" | unmunge -S "$sock" >/dev/null
}

sql() { mariadb --no-defaults -S "$DIR/run/mysqld.sock" -u root -e "$1"; }

start_mariadb() {
  alive "$DIR/run/mariadbd.pid" && return
  if [[ ! -d $DIR/db/mysql ]]; then
    mariadb-install-db --no-defaults --datadir="$DIR/db" --user=root --skip-test-db \
      --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1
  fi
  # TCP on 127.0.0.1 only (slurmdbd connects by host and port), no system my.cnf
  mariadbd --no-defaults --datadir="$DIR/db" --user=root --port="$DB_PORT" \
    --bind-address=127.0.0.1 --skip-name-resolve --socket="$DIR/run/mysqld.sock" \
    --pid-file="$DIR/run/mariadbd.pid" --log-error="$DIR/log/mariadbd.log" \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 >/dev/null 2>&1 &
  wait_port "$DB_PORT" 60 || return 1
  for _ in $(seq 50); do alive "$DIR/run/mariadbd.pid" && break; sleep 0.1; done
  sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  alive "$DIR/run/slurmdbd.pid" && return
  slurmdbd
  wait_port "$DBD_PORT" 60
}

# sacctmgr -i: no confirmation; `add` of something that exists says so and exits 1
acct() { sacctmgr -i "$@" >/dev/null 2>&1 || sacctmgr -n show "$2" "$3" | grep -q .; }

setup_accounts() {
  acct add account "$ACCOUNT" Description=tests Organization=repro
  acct add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT"
  sacctmgr -i modify user where name=root set DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
}

fail_start() {
  say "$1"
  for f in "$DIR"/log/*.log; do echo "== $f"; tail -n 20 "$f"; done >&2
  do_stop
  exit 5
}

do_start() {
  installed || { say "SLURM, munge or MariaDB is not installed (run: $0 install)"; exit 4; }
  [[ $(id -u) -eq 0 ]] || { say "needs root (slurmd runs jobs as their users)"; exit 4; }
  check_free
  write_config
  start_munge || fail_start "munged did not start"
  start_mariadb || fail_start "MariaDB did not start"
  start_slurmdbd || fail_start "slurmdbd did not start"
  # the cluster must be in the database before slurmctld registers with it
  acct add cluster "$CLUSTER" || fail_start "sacctmgr could not add the cluster"
  slurmctld -f "$ETC/slurm.conf" || fail_start "slurmctld did not start"
  slurmd -f "$ETC/slurm.conf" -N "$NODE" || fail_start "slurmd did not start"
  setup_accounts || fail_start "sacctmgr could not add the account and user"
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1 || true)
    [[ $state == idle* ]] && break
    sleep 0.5
  done
  [[ $state == idle* ]] || fail_start "node not idle after 60 s (state '${state:-unknown}')"
  sinfo >&2
  sacctmgr -n show assoc where user=root format=cluster,account,user >&2
  local d pids=()
  for d in "${DAEMONS[@]}"; do pids+=("$d $(cat "$DIR/run/$d.pid")"); done
  say "up: $(IFS=,; echo "${pids[*]}")"
}

do_stop() {
  local pid jobs d i
  # Cancel what is still queued or running on this (private) cluster, so that no job step
  # outlives the daemons.
  if alive "$DIR/run/slurmctld.pid"; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 20); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
      say "cancelled jobs: $(echo $jobs | tr '\n' ' ')"
    fi
  fi
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    d=${DAEMONS[i]}
    if alive "$DIR/run/$d.pid"; then
      pid=$(cat "$DIR/run/$d.pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
      say "stopped pid $pid ($d)"
    fi
    rm -f "$DIR/run/$d.pid"
  done
  for f in "$ETC/slurm.conf" "$ETC/gres.conf" "$ETC/slurmdbd.conf"; do
    if [[ -e $f ]] && [[ $(head -n1 "$f") == "$MARK $DIR" ]]; then rm -f "$f"; fi
  done
}

case "$ACTION" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  status) sinfo; squeue --states=all -o '%.8i %.10P %.30k %.10T %.8M %R'
          sacct -X -a -o JobID,Partition,Account,State,ExitCode,Elapsed,Timelimit ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
