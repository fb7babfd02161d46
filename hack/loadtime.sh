#!/usr/bin/env bash
# Measures the embedded mode at scale: for each count, writes a folder of generated clients
# (hack/genclients: one OAuthClient and one Secret per client, 1,000 clients per file), starts
# `latchkey serve --manifests` on it and prints the seconds until /readyz answers 200 and the
# server's RSS then (VmRSS) and at its peak (VmHWM), and the CPU seconds it used until then (user
# + system: the machine may be shared, the wall time then says little).
#
#   hack/loadtime.sh BINARY COUNT...      e.g. hack/loadtime.sh /tmp/latchkey 1000 10000 100000
#   GENCLIENTS_FLAGS=-json hack/loadtime.sh ...   documents in JSON form
set -euo pipefail
bin=$1; shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/genclients" ./hack/genclients
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
printf '%10s %10s %10s %10s %10s\n' clients seconds cpu_s rss_mb peak_mb
for n in "$@"; do
  "$work/genclients" -clients "$n" -out "$work/c$n" ${GENCLIENTS_FLAGS:-}
  port=$(freeport); probe=$(freeport)
  start=$(date +%s.%N)
  "$bin" serve --manifests "$work/c$n" --listen-address "127.0.0.1:$port" \
    --health-probe-bind-address "127.0.0.1:$probe" --metrics-bind-address 0 --log-level error >/dev/null 2>"$work/log" &
  pid=$!
  until curl -fs "http://127.0.0.1:$probe/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/log"; exit 1; }
    sleep 0.05
  done
  end=$(date +%s.%N)
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status"); hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  printf '%10d %10.1f %10.1f %10d %10d\n' "$n" "$(echo "$end - $start" | bc)" "$(echo "$ticks / $(getconf CLK_TCK)" | bc -l)" \
    $((rss / 1024)) $((hwm / 1024))
  rm -rf "$work/c$n"
done
