#!/usr/bin/env bash
# A throwaway single-node SLURM cluster for testing the workflow's SLURM profile.
#
#   scripts/slurm_cluster.sh install   # apt-get install slurmctld slurmd slurm-client munge (root)
#   scripts/slurm_cluster.sh start     # write the config, start munged, slurmctld, slurmd; wait idle
#   scripts/slurm_cluster.sh status    # sinfo and every job slurmctld still remembers
#   scripts/slurm_cluster.sh stop      # stop the daemons this script started (by their pid files)
#
# The node is this machine. It has two partitions, `cpu` (default) and `gpu`, named like the
# placeholders of profiles/slurm/profile.yaml, and REPRO_SLURM_GPUS fake GPUs: gres.conf lists
# placeholder device files, which is enough for slurmd to register gres/gpu on a machine without
# GPUs. Jobs asking for --gpus=N or --gres=gpu:N are scheduled against them (CUDA_VISIBLE_DEVICES
# stays empty: the fake devices exist for scheduling only).
#
# No accounting database: `sacct` does not work, job states come from `squeue` (slurmctld keeps
# finished jobs for MinJobAge seconds). Run Snakemake with
#   --slurm-status-command squeue --slurm-no-account
# (see docs/slurm.md).
#
# Settings (environment):
#   REPRO_SLURM_DIR   state folder: spool, logs, pid files, munge key and socket
#                     (default /tmp/repro-slurm)
#   REPRO_SLURM_PORT  slurmctld port; slurmd uses the next one (default 7817)
#   REPRO_SLURM_GPUS  fake GPUs on the node (default 2)
#   REPRO_SLURM_CPUS  CPUs the node offers (default: nproc, at least 4; more than the machine
#                     has is fine for tests: jobs then share cores)
#
# Why the config is written to /etc/slurm/slurm.conf and not kept private behind SLURM_CONF:
# Snakemake's SLURM jobstep drops every SLURM_* variable (SLURM_CONF included) before its inner
# `srun`, which then reads the default path. So only one such cluster can run on a machine at a
# time. This script never replaces a /etc/slurm/slurm.conf it did not write, and refuses to start
# while another of its clusters is running.
#
# Exit codes: 0 ok, 2 usage, 3 the machine is busy (foreign or running cluster config),
# 4 SLURM or munge not installed / not root, 5 the cluster did not come up (logs are printed).
set -euo pipefail

ACTION=${1:-}
DIR=${REPRO_SLURM_DIR:-/tmp/repro-slurm}
PORT=${REPRO_SLURM_PORT:-7817}
GPUS=${REPRO_SLURM_GPUS:-2}
CPUS=${REPRO_SLURM_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}
ETC=/etc/slurm
MARK="# written by scripts/slurm_cluster.sh, state in"
NODE=localhost
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { printf '[slurm_cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

installed() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null
}

do_install() {
  if installed; then say "already installed: $(slurmd -V)"; return; fi
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
  local conf=$ETC/slurm.conf owner
  [[ -e $conf ]] || return 0
  if ! head -n1 "$conf" | grep -q "^$MARK "; then
    say "$conf exists and was not written by this script: refusing to replace it"; exit 3
  fi
  owner=$(head -n1 "$conf" | sed "s|^$MARK ||")
  for pid in "$owner"/run/slurmctld.pid "$owner"/run/slurmd.pid; do
    if alive "$pid"; then
      if [[ $owner == "$DIR" ]]; then say "already running (state $DIR)"; exit 0; fi
      say "another test cluster is running (state $owner): stop it first"; exit 3
    fi
  done
}

write_config() {
  local mem
  # RealMemory in MB: what the machine has less 2 GB, and at least 32 GB, so that the profile's
  # requests fit on small CI machines too (memory is not enforced: no cgroups)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
  (( mem >= 32768 )) || mem=32768
  mkdir -p "$DIR"/{etc,spool/ctld,spool/d,log,run,munge}
  cat >"$DIR/etc/slurm.conf" <<EOF
$MARK $DIR
ClusterName=repro
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
# no slurmdbd: job states from squeue, which shows finished jobs for MinJobAge seconds
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
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
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
  # Fake GPUs: without File= entries slurmd reports 0 GPUs and the node is drained.
  local files=()
  for ((i = 0; i < GPUS; i++)); do files+=("$DIR/run/fakegpu$i"); touch "$DIR/run/fakegpu$i"; done
  {
    echo "$MARK $DIR"
    for f in "${files[@]}"; do echo "NodeName=$NODE Name=gpu File=$f"; done
  } >"$DIR/etc/gres.conf"
  mkdir -p "$ETC"
  cp "$DIR/etc/slurm.conf" "$DIR/etc/gres.conf" "$ETC/"
  say "wrote $ETC/slurm.conf: $CPUS CPUs, ${mem} MB, $GPUS fake GPUs, ports $PORT/$((PORT + 1))"
}

start_munge() {
  local key=$DIR/munge/munge.key sock=$DIR/munge/munge.socket
  alive "$DIR/run/munged.pid" && return
  if [[ ! -s $key ]]; then head -c 1024 /dev/urandom >"$key"; fi
  chmod 700 "$DIR/munge"; chmod 400 "$key"
  # --force: accept a key and socket outside munge's usual, stricter locations
  munged --force --socket="$sock" --key-file="$key" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed"
  for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
  munge -n -S "$sock" | unmunge -S "$sock" >/dev/null
}

fail_start() {
  say "$1"
  for f in "$DIR"/log/*.log; do echo "== $f"; tail -n 20 "$f"; done >&2
  do_stop
  exit 5
}

do_start() {
  installed || { say "SLURM is not installed (run: $0 install)"; exit 4; }
  [[ $(id -u) -eq 0 ]] || { say "needs root (slurmd runs jobs as their users)"; exit 4; }
  check_free
  write_config
  start_munge || fail_start "munged did not start"
  slurmctld -f "$ETC/slurm.conf" || fail_start "slurmctld did not start"
  slurmd -f "$ETC/slurm.conf" -N "$NODE" || fail_start "slurmd did not start"
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1 || true)
    [[ $state == idle* ]] && break
    sleep 0.5
  done
  [[ $state == idle* ]] || fail_start "node not idle after 60 s (state '${state:-unknown}')"
  sinfo >&2
  say "up: slurmctld pid $(cat "$DIR/run/slurmctld.pid"), slurmd pid $(cat "$DIR/run/slurmd.pid")"
}

do_stop() {
  local pid jobs
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
  for f in "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid" "$DIR/run/munged.pid"; do
    if alive "$f"; then
      pid=$(cat "$f")
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
      say "stopped pid $pid ($(basename "$f" .pid))"
    fi
  done
  for f in "$ETC/slurm.conf" "$ETC/gres.conf"; do
    if [[ -e $f ]] && [[ $(head -n1 "$f") == "$MARK $DIR" ]]; then rm -f "$f"; fi
  done
}

case "$ACTION" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  status) sinfo; squeue --states=all -o '%.8i %.10P %.30k %.10T %.8M %R' ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
