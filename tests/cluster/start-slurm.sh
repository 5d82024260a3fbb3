#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/cluster) and for
# trying the cluster path on a laptop. Debian/Ubuntu, as root, no systemd needed.
#
#   tests/cluster/start-slurm.sh                  # with accounting (slurmdbd over MariaDB)
#   tests/cluster/start-slurm.sh --no-accounting  # slurmctld and slurmd only: sacct is disabled
#   tests/cluster/start-slurm.sh --stop           # stop the daemons that it started
#   sinfo; sbatch --wrap hostname; .venv/bin/snakemake --workflow-profile workflow/profiles/slurm-cpu
#
# Idempotent: it installs the Debian packages that are missing (munge slurmctld slurmd
# slurm-client slurmdbd mariadb-server mariadb-client), starts only the daemons that are not
# running (munged, mariadbd, slurmdbd, slurmctld, slurmd, in that order), and restarts
# slurmctld and slurmd only when the requested set-up differs from the running one. It returns
# once `sinfo` shows the node idle and a smoke job has COMPLETED (in sacct with accounting).
# The configuration is /etc/slurm/slurm.conf and slurmdbd.conf, where every SLURM command looks
# (the plugin's job step drops $SLURM_CONF from the job environment, so a configuration elsewhere
# breaks srun inside the jobs); the script refuses to replace a slurm.conf that it did not write.
# State, logs, pid files and the database live under $AMVA_SLURM_DIR (default /tmp/amva-slurm).
# The daemons listen on 127.0.0.1 only, on ports
# 16306 (MariaDB), 16817-16819 (slurmctld, slurmd, slurmdbd), so a site's SLURM is not touched.
# Partition `cpu` (the profiles' name), account `amva-test`, cluster `amva`, node `amva-node`.
set -euo pipefail

MODE=accounting
case "${1:-}" in
  "" | --accounting) ;;
  --no-accounting) MODE=none ;;
  --stop) MODE=stop ;;
  *) echo "usage: $0 [--accounting | --no-accounting | --stop]" >&2; exit 2 ;;
esac

DIR=${AMVA_SLURM_DIR:-/tmp/amva-slurm}
CLUSTER=amva
ACCOUNT=amva-test
NODE=amva-node
DB_PORT=16306
CTLD_PORT=16817
SLURMD_PORT=16818
DBD_PORT=16819
DB_PASS=amva-slurm-test   # the database listens on 127.0.0.1 only and holds nothing but this cluster's jobs
CONF=/etc/slurm
HEADER="# written by tests/cluster/start-slurm.sh"
T0=$SECONDS

log() { printf '[start-slurm %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { echo "start-slurm: $*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every half second until it succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what: not ready after ${limit}s (logs in $DIR/log)"
    sleep 0.5
  done
}

# alive PIDFILE: the process named in PIDFILE runs.
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop PIDFILE: end the daemon this script started (by its pid), and wait until it has gone.
stop() {
  alive "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid"
  wait_for 30 "stopping $pid" bash -c "! kill -0 $pid"
  rm -f "$1"
}

[[ $EUID -eq 0 ]] || die "run as root (the daemons and the test jobs run as root)"

install_packages() {
  local packages=(munge slurmctld slurmd slurm-client)
  [[ $MODE == accounting ]] && packages+=(slurmdbd mariadb-server mariadb-client)
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]}"
  apt-get update -qq
  # no daemon may start from the package scripts: this script starts them (and there is no systemd)
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.amva
  chmod +x /usr/sbin/policy-rc.d.amva
  [[ -e /usr/sbin/policy-rc.d ]] || ln -s /usr/sbin/policy-rc.d.amva /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ $(readlink /usr/sbin/policy-rc.d || true) == /usr/sbin/policy-rc.d.amva ]] && rm -f /usr/sbin/policy-rc.d
  rm -f /usr/sbin/policy-rc.d.amva
}

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /etc/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    runuser -u munge -- mungekey --create --keyfile /etc/munge/munge.key
  fi
  # munged refuses a key or directories owned by root: it runs as munge
  chown munge:munge /etc/munge/munge.key
  chmod 0600 /etc/munge/munge.key
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 20 munged bash -c "munge -n </dev/null | unmunge"
}

write_if_changed() {  # write_if_changed FILE MODE: stdin to FILE; returns 0 when FILE changed
  local new
  new=$(cat)
  if [[ -f $1 ]] && [[ $(cat "$1") == "$new" ]]; then return 1; fi
  printf '%s\n' "$new" >"$1"
  chmod "$2" "$1"
}

start_mariadb() {
  local data=$DIR/mysql
  if [[ ! -d $data/mysql ]]; then
    log "creating the accounting database in $data"
    mariadb-install-db --no-defaults --user=root --datadir="$data" --auth-root-authentication-method=socket \
      --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1
  fi
  if ! alive "$DIR/run/mariadb.pid"; then
    log "starting mariadbd"
    setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$data" --socket="$DIR/run/mariadb.sock" \
      --port=$DB_PORT --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$DIR/run/mariadb.pid" \
      --log-error="$DIR/log/mariadb.log" --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  fi
  wait_for 60 mariadbd mariadb-admin --no-defaults --socket="$DIR/run/mariadb.sock" ping
  mariadb --no-defaults --socket="$DIR/run/mariadb.sock" -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  # slurmdbd refuses its configuration unless only its owner can read it
  if write_if_changed "$CONF/slurmdbd.conf" 600 <<EOF; then
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    stop "$DIR/run/slurmdbd.pid"
  fi
  if ! alive "$DIR/run/slurmdbd.pid"; then
    log "starting slurmdbd"
    slurmdbd
  fi
  wait_for 60 slurmdbd sacctmgr -n list cluster
  if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
    log "registering cluster $CLUSTER, account $ACCOUNT"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  if [[ -z $(sacctmgr -n -P list account "$ACCOUNT" format=account) ]]; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="amva tests" organization=amva >/dev/null
  fi
  if [[ -z $(sacctmgr -n -P list assoc cluster="$CLUSTER" account="$ACCOUNT" user=root format=user) ]]; then
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
  fi
}

slurm_conf() {
  # The node as slurmd detects it: a RealMemory above what it finds would drain the node.
  local detected cpus boards sockets cores threads memory
  detected=$(slurmd -C | head -1)
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$detected"; }
  cpus=$(field CPUs) boards=$(field Boards) sockets=$(field SocketsPerBoard)
  cores=$(field CoresPerSocket) threads=$(field ThreadsPerCore) memory=$(field RealMemory)
  local accounting="AccountingStorageType=accounting_storage/none"
  if [[ $MODE == accounting ]]; then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment"
  fi
  cat <<EOF
$HEADER ($MODE)
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# no cgroups in a container without systemd: processes by /proc, memory limits by polling
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# finished jobs stay in squeue for 300 s (SLURM's default): the plugin's squeue status check needs that
MinJobAge=300
KillWait=5
ReturnToService=2
SlurmdTimeout=60
$accounting
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$((memory * 9 / 10)) State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_slurm() {  # start_slurm CHANGED: with CHANGED=1 the daemons of an older slurm.conf are stopped first
  if (($1)); then
    log "slurm.conf written ($MODE): (re)starting slurmctld and slurmd"
    stop "$DIR/run/slurmd.pid"
    stop "$DIR/run/slurmctld.pid"
  fi
  if ! alive "$DIR/run/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld
  fi
  wait_for 60 slurmctld scontrol ping
  if ! alive "$DIR/run/slurmd.pid"; then
    log "starting slurmd"
    slurmd -N "$NODE"
  fi
  node_up() { [[ $(sinfo -h -n "$NODE" -o %t) =~ ^(idle|mix|alloc|drain|drng)$ ]]; }
  wait_for 60 "node $NODE" node_up
  if [[ $(sinfo -h -n "$NODE" -o %t) == drain ]]; then  # drained by an earlier configuration
    log "node $NODE drained ($(sinfo -h -n "$NODE" -o %E)): resuming it"
    scontrol update nodename="$NODE" state=resume
  fi
  node_idle() { [[ $(sinfo -h -n "$NODE" -o %t) == idle ]]; }
  wait_for 60 "node $NODE idle" node_idle
}

smoke_job() {
  local args=(--parsable --job-name amva-smoke --output /dev/null --time 1 --mem 10 --wrap true)
  [[ $MODE == accounting ]] && args+=(--account "$ACCOUNT")
  local id
  id=$(sbatch "${args[@]}")
  if [[ $MODE == accounting ]]; then
    completed() { [[ $(sacct -n -X -P -j "$id" -o State) == COMPLETED ]]; }
  else
    completed() { scontrol show job "$id" | grep -q "JobState=COMPLETED"; }
  fi
  wait_for 60 "smoke job $id" completed
  log "smoke job $id COMPLETED"
}

if [[ $MODE == stop ]]; then
  for daemon in slurmd slurmctld slurmdbd mariadb; do stop "$DIR/run/$daemon.pid"; done
  log "stopped (munged keeps running: other software may use it)"
  exit 0
fi
install_packages
mkdir -p "$DIR"/{state,spool,run,log} "$CONF"
start_munge
changed=0
if [[ -s $CONF/slurm.conf ]] && [[ $(head -c ${#HEADER} "$CONF/slurm.conf") != "$HEADER" ]]; then
  die "$CONF/slurm.conf exists and was not written by this script: not replacing a site's SLURM configuration"
fi
slurm_conf | write_if_changed "$CONF/slurm.conf" 644 && changed=1  # sacctmgr reads it too
if [[ $MODE == accounting ]]; then
  start_mariadb
  start_slurmdbd
fi
start_slurm $changed
smoke_job
log "cluster $CLUSTER up ($MODE), configuration in $CONF"
