#!/usr/bin/env bash
# Three hosts on this machine, run as the README's "Sweeps on a cluster" runs on real ones (root, iproute2).
#
#   bash parity/cluster_demo.sh              # the whole demo: hosts up, a 2 x 2 sweep, a worker host's link cut
#                                            # mid-job, an unreachable scheduler; hosts removed at the end
#   bash parity/cluster_demo.sh up DIR       # build the hosts, start the scheduler and one Dask worker per worker host
#   bash parity/cluster_demo.sh on DIR HOST CMD ...   # run CMD on HOST (tp-harness, tp-worker1, tp-worker2)
#   bash parity/cluster_demo.sh link DIR HOST down|up # pull (or plug back) HOST's network cable
#   bash parity/cluster_demo.sh worker DIR HOST       # start HOST's Dask worker again (one cut off ends itself)
#   bash parity/cluster_demo.sh down DIR     # stop every process of the hosts, remove the hosts
#
# A host is a network namespace (its own address on a private bridge, 10.213.0.0/24 unless TP_CLUSTER_SUBNET),
# with its own host name and /etc/hosts naming the three, and its own working folder DIR/<host> (cwd and TMPDIR,
# so Dask's scratch space too). A worker host sees no folder of the others: an empty tmpfs lies over the harness's
# working folder (its reports), the other worker's, the project's reports/ and the real tiles, as on a machine
# without a shared file system. Only the project and its set-up (.venv, .rlib) are at the same path everywhere, as
# the README asks. Each worker host gets one core (taskset), so jobs get one thread each, as on a 1-core machine.
# The test that runs this: parity/test_cluster.py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/parity/cluster_demo.sh"
VENV="${VENV:-$ROOT/.venv}"
SUBNET="${TP_CLUSTER_SUBNET:-10.213.0}"
HOSTS=(tp-harness tp-worker1 tp-worker2)
SCHEDULER="tcp://tp-harness:8786"

die() { printf 'cluster_demo: %s\n' "$*" >&2; exit 2; }

# The index of HOST in HOSTS (its address is SUBNET.<index + 1>, its cable <prefix><index>).
host_index() {
  local i
  for i in "${!HOSTS[@]}"; do [ "${HOSTS[$i]}" = "$1" ] && { echo "$i"; return; }; done
  die "unknown host $1 (hosts: ${HOSTS[*]})"
}

prefix_of() { cat "$1/prefix" 2>/dev/null || die "$1: not a folder made by '$0 up'"; }

# Folders a worker host must not see: every other host's working folder, the project's reports, the real tiles.
hidden_from() {
  local dir="$1" me="$2" h data
  for h in "${HOSTS[@]}"; do [ "$h" != "$me" ] && echo "$dir/$h"; done
  [ -d "$ROOT/reports" ] && echo "$ROOT/reports"
  data="${TAILINGS_DATA:-$ROOT/../shared/data/tailings}"
  if [ -d "$data" ]; then (cd "$data" && pwd -P); fi
}

cmd_up() {
  local dir="$1" prefix i h
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  command -v ip >/dev/null && ip netns list >/dev/null || die "needs iproute2 with 'ip netns'"
  mkdir -p "$dir/logs"
  dir="$(cd "$dir" && pwd)"
  prefix="tp$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"  # netns, bridge and cable names; <= 15 chars
  echo "$prefix" > "$dir/prefix"
  { echo "127.0.0.1 localhost"
    for i in "${!HOSTS[@]}"; do echo "$SUBNET.$((i + 1)) ${HOSTS[$i]}"; done; } > "$dir/hosts"
  ip link add "${prefix}br" type bridge
  ip link set "${prefix}br" up
  for i in "${!HOSTS[@]}"; do
    h="${HOSTS[$i]}"
    mkdir -p "$dir/$h/tmp"
    ip netns add "$prefix-$h"
    ip link add "$prefix$i" type veth peer name eth0 netns "$prefix-$h"
    ip link set "$prefix$i" master "${prefix}br" up
    ip -n "$prefix-$h" addr add "$SUBNET.$((i + 1))/24" dev eth0
    ip -n "$prefix-$h" link set eth0 up
    ip -n "$prefix-$h" link set lo up
  done
  echo "hosts ${HOSTS[*]} on ${prefix}br ($SUBNET.0/24); working folders under $dir"

  # The README's commands, each on its host.
  setsid bash "$SELF" on "$dir" tp-harness env DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1 \
    "$VENV/bin/dask" scheduler >"$dir/logs/tp-harness.log" 2>&1 < /dev/null &
  start_worker "$dir" tp-worker1
  start_worker "$dir" tp-worker2
  wait_workers "$dir"
}

# Start HOST's Dask worker in the background, on one core.
start_worker() {
  local dir="$1" host="$2" i
  i="$(host_index "$host")"
  [ "$i" != 0 ] || die "tp-harness runs the scheduler, not a worker"
  setsid bash "$SELF" on "$dir" "$host" taskset -c $(( (i - 1) % $(nproc) )) \
    "$VENV/bin/dask" worker "$SCHEDULER" --nthreads 1 --nworkers 1 >>"$dir/logs/$host.log" 2>&1 < /dev/null &
}

# Wait (from tp-harness) until the scheduler answers and counts both Dask workers.
wait_workers() {
  local dir="$1"
  if ! bash "$SELF" on "$dir" tp-harness "$VENV/bin/python" -c "
import sys
from distributed import Client
for attempt in range(60):
    try:
        client = Client('$SCHEDULER', timeout='2s')
        break
    except (OSError, TimeoutError):
        pass
else:
    sys.exit('no scheduler at $SCHEDULER after 2 minutes')
client.wait_for_workers(2, timeout=120)
print('scheduler $SCHEDULER with workers', *sorted(w['host'] for w in client.scheduler_info()['workers'].values()))
"; then
    tail -n 20 "$dir"/logs/*.log >&2
    die "the cluster did not come up (logs: $dir/logs)"
  fi
}

# Inside HOST's fresh namespaces (called through `on`): name, /etc/hosts, hidden folders, working folder.
cmd_enter() {
  local dir="$1" host="$2" folder
  shift 2
  hostname "$host"
  mount --bind "$dir/hosts" /etc/hosts
  if [ "$host" != tp-harness ]; then
    while read -r folder; do
      [ -n "$folder" ] && mount -t tmpfs -o size=256m,mode=0755 "hidden-from-$host" "$folder"
    done < <(hidden_from "$dir" "$host")
  fi
  cd "$dir/$host"
  export TMPDIR="$dir/$host/tmp"
  exec "$@"
}

cmd_on() {
  local dir="$1" host="$2" prefix
  shift 2
  host_index "$host" >/dev/null
  prefix="$(prefix_of "$dir")"
  exec ip netns exec "$prefix-$host" unshare --mount --uts --propagation private -- \
    bash "$SELF" _enter "$dir" "$host" "$@"
}

cmd_link() {
  local dir="$1" host="$2" state="$3" prefix
  prefix="$(prefix_of "$dir")"
  ip link set "$prefix$(host_index "$host")" "$state"
}

cmd_down() {
  local dir="$1" prefix h i pids
  prefix="$(cat "$dir/prefix" 2>/dev/null)" || return 0
  set +e
  # Every process of a host lives in its network namespace: the scheduler, the Dask workers, their jobs.
  for sig in TERM KILL; do
    pids=""
    for h in "${HOSTS[@]}"; do pids+=" $(ip netns pids "$prefix-$h" 2>/dev/null)"; done
    [ -n "${pids// /}" ] || break
    kill -s "$sig" $pids 2>/dev/null
    [ "$sig" = TERM ] && sleep 2
  done
  for i in "${!HOSTS[@]}"; do
    ip netns del "$prefix-${HOSTS[$i]}" 2>/dev/null
    ip link del "$prefix$i" 2>/dev/null
  done
  ip link del "${prefix}br" 2>/dev/null
  rm -f "$dir/prefix"
  set -e
}

# The whole story, as parity/test_cluster.py checks it.
cmd_demo() {
  local dir tp grid sweep
  dir="$(mktemp -d /tmp/tailings-parity-cluster.XXXXXX)"
  trap "cmd_down '$dir'" EXIT  # the folder's name, not the variable: the trap runs after this function
  trap 'exit 130' INT TERM
  cmd_up "$dir"
  tp="$VENV/bin/tailings-parity"
  grid=(--preset smoke --set epochs=1 --impls python,r-rscript)

  echo; echo "== 1. a 2 x 2 sweep on tp-harness, jobs on tp-worker1 and tp-worker2"
  bash "$SELF" on "$dir" tp-harness "$tp" sweep "${grid[@]}" --grid learning_rate=1e-3,3e-3 --grid batch_size=4,8 \
    --scheduler "$SCHEDULER" --reports-dir reports
  for sweep in "$dir"/tp-harness/reports/sweep-*/cells/*/*/harness.json; do  # where each job ran
    "$VENV/bin/python" -c "import json, sys
print(sys.argv[1].split('/cells/')[1].split('/')[0] + ':', *(w['key'] + ' on ' + w['host']
                                                          for w in json.load(open(sys.argv[1]))['workers']))" "$sweep"
  done

  echo; echo "== 2. tp-worker1's cable pulled during a job"
  bash "$SELF" on "$dir" tp-harness "$tp" sweep "${grid[@]}" --grid learning_rate=1e-3 \
    --scheduler "$SCHEDULER" --reports-dir reports-cut &
  local sweep_pid=$! prefix
  prefix="$(prefix_of "$dir")"
  until ip netns pids "$prefix-tp-worker1" | xargs -r -I{} cat /proc/{}/cmdline 2>/dev/null | tr '\0' ' ' \
        | grep -q -e 'worker\.R' -e 'python_impl\.worker'; do
    kill -0 "$sweep_pid" 2>/dev/null || die "the sweep ended before a job started on tp-worker1"
    sleep 0.5
  done
  sleep 3
  echo "cutting tp-worker1's link mid-job"
  cmd_link "$dir" tp-worker1 down
  wait "$sweep_pid"

  echo; echo "== 3. the scheduler's host unreachable: a sweep started on tp-worker2"
  cmd_link "$dir" tp-harness down
  if bash "$SELF" on "$dir" tp-worker2 "$tp" sweep "${grid[@]}" --grid learning_rate=1e-3 \
      --scheduler "$SCHEDULER" --reports-dir reports; then
    die "the sweep ran without its scheduler"
  else
    echo "exit status $?, nothing written"
  fi
  cmd_link "$dir" tp-harness up
  echo; echo "the sweeps: $dir/tp-harness/reports*; the hosts' Dask logs: $dir/logs (rm -rf $dir when done)"
}

case "${1:-demo}" in
  demo) cmd_demo ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; cmd_up "$2" ;;
  on) [ $# -ge 4 ] || die "usage: $0 on DIR HOST CMD ..."; shift; cmd_on "$@" ;;
  _enter) shift; cmd_enter "$@" ;;
  link) [ $# -eq 4 ] || die "usage: $0 link DIR HOST down|up"; cmd_link "$2" "$3" "$4" ;;
  worker) [ $# -eq 3 ] || die "usage: $0 worker DIR HOST"; start_worker "$2" "$3"; wait_workers "$2" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; cmd_down "$2" ;;
  *) die "unknown command $1 (demo, up, on, link, worker, down)" ;;
esac
