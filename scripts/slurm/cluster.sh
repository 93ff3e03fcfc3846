#!/usr/bin/env bash
# Start/stop a real single-node SLURM cluster (Debian 12, run as root, no systemd)
# with 4 fake GPUs, for testing the SLURM backend end to end.
#   cluster.sh start|stop|status|env      state dir: $AUTOML_SLURM_DIR (default /tmp/automl-slurm)
# Afterwards: eval "$(cluster.sh env)"  so that sbatch/squeue/scontrol use this cluster.
set -euo pipefail

DIR="${AUTOML_SLURM_DIR:-/tmp/automl-slurm}"
CONF="$DIR/slurm.conf"
MUNGE_PID=/run/munge/munged.pid
TIMEOUT=60
export SLURM_CONF="$CONF"   # every slurm command below talks to this cluster

die() { echo "cluster.sh: error: $*" >&2; exit 1; }

# Is the process in pid file $1 running? Zombies count as dead: PID 1 on these machines
# does not reap orphans, so exited daemons linger as zombies and kill -0 still succeeds.
# (Daemons delete their own pid file on exit, so it may vanish while we read it.)
alive() {
  local pid st; pid=$(cat "$1" 2>/dev/null) && [[ -n "$pid" ]] \
    && st=$(ps -o stat= -p "$pid" 2>/dev/null) && [[ "$st" != Z* ]]
}

# Healthy = controller answers and the node is usable. Cheap (~0.1 s): no job submitted,
# so it also says "up" while every GPU is busy.
healthy() {
  [[ -f "$CONF" ]] || return 1
  timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  timeout 5 sinfo -h -n localhost -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)$'
}

install_packages() {
  local pkgs=(slurmctld slurmd slurm-client munge)
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  local log="$DIR/log/apt.log"; mkdir -p "$DIR/log"
  # Only refresh the package lists if the install fails without it (saves ~1.5 s+).
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$log" 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >>"$log" 2>&1 \
    || die "apt-get install ${pkgs[*]} failed: $(tail -3 "$log")"
}

write_config() {
  mkdir -p "$DIR"/{state,spool,log}
  # Fake GPUs: gres.conf needs File= entries that exist (a missing one makes slurmd hang,
  # Count= without File= is silently dropped and drains the node). /dev/null links do.
  for i in 0 1 2 3; do ln -sfn /dev/null "$DIR/gpu$i"; done
  cat > "$DIR/gres.conf" <<EOF
AutoDetect=off
Name=gpu File=$DIR/gpu[0-3]
EOF
  cat > "$CONF" <<EOF
ClusterName=automl
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Default cred_expire is 120 s and a requeued job waits cred_expire+1 s before restarting.
AuthInfo=cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups here (and cgroup device limits would break the fake GPUs).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
JobRequeue=1
# Keep finished jobs visible to squeue -t all / scontrol show job for an hour.
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
# Advertise more CPUs than the machine has; config_overrides makes slurmd accept it.
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=8192 Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=10
EOF
}

start_munge() {
  # Reuse a munged that already answers (ours from an earlier start, or the system's).
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged || die "munged failed to start (see /var/log/munge/munged.log)"
}

# Stop our slurm daemons (and wait for them), then munged. Safe when nothing runs.
stop_all() {
  # scontrol shutdown stops slurmctld and slurmd; skip it when slurmctld is not running
  # (it would retry for ~10 s); stray daemons are then killed through their pid files.
  if alive "$DIR/slurmctld.pid"; then timeout 10 scontrol shutdown >/dev/null 2>&1 || true; fi
  local pidf i
  for pidf in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$MUNGE_PID"; do
    if alive "$pidf"; then kill "$(cat "$pidf" 2>/dev/null)" 2>/dev/null || true; fi
    for i in $(seq 50); do alive "$pidf" || break; sleep 0.2; done
    if alive "$pidf"; then kill -9 "$(cat "$pidf" 2>/dev/null)" 2>/dev/null || true; fi
    rm -f "$pidf"
  done
}

start() {
  if healthy; then echo "slurm cluster already up ($DIR); to use it: $(print_env)"; return 0; fi
  [[ $EUID -eq 0 ]] || die "must run as root"
  install_packages
  # Anything half-running would clash (a second slurmd kills the first): clean slate.
  stop_all
  write_config
  start_munge
  slurmctld -f "$CONF" || die "slurmctld failed: $(grep -h fatal "$DIR"/log/slurmctld.log | tail -1)"
  slurmd -f "$CONF" -N localhost || die "slurmd failed: $(grep -h fatal "$DIR"/log/slurmd.log | tail -1)"
  local deadline=$((SECONDS + TIMEOUT))
  until healthy; do
    ((SECONDS < deadline)) || die "not ready after ${TIMEOUT}s: $(sinfo -h -o '%T %E' 2>&1 | head -1); logs in $DIR/log"
    sleep 0.2
  done
  # Final proof: a one-GPU job actually runs.
  local left=$((deadline - SECONDS)); ((left > 1)) || left=2
  timeout "$left" srun --gres=gpu:1 -t 1 true \
    || die "test job 'srun --gres=gpu:1 true' failed; logs in $DIR/log"
  echo "slurm cluster up ($DIR); to use it: $(print_env)"
}

print_env() { echo "export SLURM_CONF=$CONF"; }

case "${1:-}" in
  start) start ;;
  stop) stop_all; echo "slurm cluster stopped" ;;
  status) if healthy; then echo up; else echo down; exit 1; fi ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
