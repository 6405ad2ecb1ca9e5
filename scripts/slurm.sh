#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the tests and benchmarks: installs Debian's
# slurm-wlm and munge when missing, writes its config under $GNOMON_SLURM_DIR (default
# /tmp/gnomon-slurm) and starts munged, slurmctld and slurmd without systemd. Idempotent: when
# the node already answers, it only prints where the config is. Prints `SLURM_CONF=<path>`.
set -euo pipefail

DIR=${GNOMON_SLURM_DIR:-/tmp/gnomon-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
node_up() { [ -f "$CONF" ] && timeout 5 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

if node_up; then
  echo "SLURM_CONF=$CONF"
  exit 0
fi

if ! have sbatch || ! have slurmctld || ! have slurmd || ! have munged; then
  echo "slurm: installing slurm-wlm and munge" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: a key, a socket directory, the daemon running as its own user.
if [ ! -s /etc/munge/munge.key ]; then
  as_root mkdir -p /etc/munge
  if have mungekey; then as_root mungekey --create --keyfile=/etc/munge/munge.key; else
    as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
fi
as_root mkdir -p /run/munge /var/lib/munge /var/log/munge
as_root chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
as_root chmod 0400 /etc/munge/munge.key
as_root chmod 0755 /run/munge
if ! munge -n >/dev/null 2>&1; then
  as_root runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 1 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi

HOST=$(hostname -s)
mkdir -p "$DIR/state" "$DIR/spool"
cat >"$CONF" <<CONF
ClusterName=gnomon
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MinJobAge=5
ReturnToService=2
MpiDefault=none
NodeName=$HOST CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:32
CONF

# Daemons left from an earlier config of ours are replaced; nobody else's are touched.
for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  fi
done
slurmctld -i -f "$CONF"
slurmd -f "$CONF"
for _ in $(seq 1 100); do node_up && break; sleep 0.2; done
if ! node_up; then
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do node_up && break; sleep 0.2; done
fi
node_up || { echo "slurm: the node did not come up; see $DIR/*.log" >&2; exit 1; }
echo "SLURM_CONF=$CONF"
