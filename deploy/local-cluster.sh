#!/usr/bin/env bash
# A Ballista cluster on this machine for trying exdep's cluster mode and for its tests: one
# exdep-scheduler and two exdep-executors on 127.0.0.1.
#
#   deploy/local-cluster.sh start    start them and wait until both executors are registered
#   deploy/local-cluster.sh stop     stop exactly the processes `start` started
#   deploy/local-cluster.sh status   say what runs
#
# Then: exdep run --config FILE --cluster df://127.0.0.1:50050
#
# Settings (environment):
#   EXDEP_SCHEDULER_PORT   scheduler port (default 50050); executor 1 listens on PORT+1 (Flight)
#                          and PORT+2 (gRPC), executor 2 on PORT+3 and PORT+4
#   EXDEP_CLUSTER_DIR      pid files, logs and executor work folders
#                          (default ${TMPDIR:-/tmp}/exdep-cluster-PORT)
#   EXDEP_BIN_DIR          where exdep-scheduler and exdep-executor are
#                          (default: $CARGO_TARGET_DIR or ./target, debug profile; built if missing)
#   EXDEP_EXECUTOR_VCORES  tasks each executor runs at once (default 1)
#   EXDEP_EXECUTOR_TIMEOUT seconds of silence after which an executor counts as lost (default 60)
#   EXDEP_HEARTBEAT        seconds between executor heartbeats (default 5)
# The processes inherit the environment, so AWS_* variables give them their S3 access.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${EXDEP_SCHEDULER_PORT:-50050}"
dir="${EXDEP_CLUSTER_DIR:-${TMPDIR:-/tmp}/exdep-cluster-$port}"
bin="${EXDEP_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/debug}"
vcores="${EXDEP_EXECUTOR_VCORES:-1}"
timeout="${EXDEP_EXECUTOR_TIMEOUT:-60}"
heartbeat="${EXDEP_HEARTBEAT:-5}"

say() { echo "local-cluster: $*" >&2; }

# The HTTP status of GET $1 on the scheduler, or 000 when it does not answer.
http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$1" || true
    else
        { exec 3<>"/dev/tcp/127.0.0.1/$port" \
            && printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3 \
            && head -n1 <&3 | cut -d' ' -f2; } 2>/dev/null || echo 000
    fi
}

# Whether the process in pid file $1 runs and is one of ours.
alive() {
    [[ -f "$1" ]] || return 1
    local pid
    pid="$(cat "$1")"
    [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "exdep-"
}

wait_for() { # $1 path, $2 seconds, $3 what
    local deadline=$((SECONDS + $2))
    until [[ "$(http_status "$1")" == 200 ]]; do
        if ((SECONDS >= deadline)); then
            say "$3 not reached within $2 s; logs in $dir"
            tail -n 20 "$dir"/*.log >&2 || true
            stop
            exit 1
        fi
        for pid_file in "$dir"/*.pid; do
            if [[ -f "$pid_file" ]] && ! alive "$pid_file"; then
                say "$(basename "$pid_file" .pid) exited; its log:"
                tail -n 20 "$dir/$(basename "$pid_file" .pid).log" >&2 || true
                stop
                exit 1
            fi
        done
        sleep 0.2
    done
}

start() {
    if alive "$dir/scheduler.pid"; then
        say "already running (scheduler pid $(cat "$dir/scheduler.pid")); stop it first"
        exit 1
    fi
    if [[ ! -x "$bin/exdep-scheduler" || ! -x "$bin/exdep-executor" ]]; then
        say "building the cluster binaries: cargo build -p exdep --bins"
        (cd "$repo" && cargo build -p exdep --bins)
    fi
    mkdir -p "$dir"
    say "scheduler on 127.0.0.1:$port"
    "$bin/exdep-scheduler" --bind-host 127.0.0.1 --port "$port" --min-ready-executors 2 \
        --executor-timeout-seconds "$timeout" >"$dir/scheduler.log" 2>&1 &
    echo $! >"$dir/scheduler.pid"
    wait_for /healthz 60 "the scheduler"
    for n in 1 2; do
        local flight=$((port + 2 * n - 1)) grpc=$((port + 2 * n))
        mkdir -p "$dir/executor-$n"
        say "executor $n on 127.0.0.1:$flight (Flight) and :$grpc (gRPC)"
        "$bin/exdep-executor" --bind-host 127.0.0.1 --external-host 127.0.0.1 \
            --port "$flight" --grpc-port "$grpc" --scheduler-host 127.0.0.1 \
            --scheduler-port "$port" --work-dir "$dir/executor-$n" --vcores "$vcores" \
            --heartbeat-seconds "$heartbeat" >"$dir/executor-$n.log" 2>&1 &
        echo $! >"$dir/executor-$n.pid"
    done
    wait_for /readyz 60 "two registered executors"
    say "ready: df://127.0.0.1:$port (logs in $dir)"
}

stop() {
    local pid_file pid
    for pid_file in "$dir"/executor-*.pid "$dir"/scheduler.pid; do
        [[ -f "$pid_file" ]] || continue
        if alive "$pid_file"; then
            pid="$(cat "$pid_file")"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                alive "$pid_file" || break
                sleep 0.1
            done
            alive "$pid_file" && kill -KILL "$pid" 2>/dev/null || true
            say "stopped $(basename "$pid_file" .pid) (pid $pid)"
        fi
        rm -f "$pid_file"
    done
}

status() {
    local pid_file
    for pid_file in "$dir"/scheduler.pid "$dir"/executor-*.pid; do
        [[ -f "$pid_file" ]] || continue
        if alive "$pid_file"; then
            echo "$(basename "$pid_file" .pid): running (pid $(cat "$pid_file"))"
        else
            echo "$(basename "$pid_file" .pid): not running"
        fi
    done
    echo "scheduler /readyz: $(http_status /readyz)"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
