#!/usr/bin/env bash
# The classroom demo: a registry and one peer per script in demos/, all on
# loopback, their output interleaved with a name in front of each line.
# Exits 0 when every script succeeded; leaves no process behind.
#
# Usage: demos/run.sh [BIN_DIR]   (default: target/release)
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../target/release}
# DEMO_WORK names the scratch folder (tests use it to check nothing is left running).
work=${DEMO_WORK:-$(mktemp -d)}
mkdir -p "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$bin/registry" --listen 127.0.0.1:0 --store "$work/registry.db" >"$work/registry.out" 2>"$work/registry.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "listening on" "$work/registry.out" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's/^registry listening on //p' "$work/registry.out")
if [ -z "$addr" ]; then
    echo "the registry did not start:" >&2
    cat "$work/registry.log" >&2
    exit 1
fi
echo "registry on $addr"

colors=(36 32 35 33 34)
i=0
peers=()
for script in "$here"/*.script; do
    name=$(basename "$script" .script)
    c=${colors[$((i % ${#colors[@]}))]}
    label=$(printf '\033[1;%sm%-6s\033[0m│' "$c" "$name")
    (
        "$bin/peer" --registry "$addr" --script "$script" --color always 2>&1
        echo "exit $?" >"$work/$name.status"
    ) | sed -u "s/^/$label /" &
    pids+=($!)
    peers+=("$name")
    i=$((i + 1))
done

# Each peer's script has its own time-outs; this only bounds the whole.
deadline=$((SECONDS + 30))
while :; do
    done=0
    for name in "${peers[@]}"; do
        [ -f "$work/$name.status" ] && done=$((done + 1))
    done
    [ "$done" -eq "${#peers[@]}" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "demo: still running after 30 s; stopping" >&2
        exit 1
    fi
    sleep 0.1
done
status=0
for name in "${peers[@]}"; do
    s=$(cat "$work/$name.status")
    if [ "$s" != "exit 0" ]; then
        echo "demo: $name's script failed ($s)" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "demo: all ${#peers[@]} scripts succeeded"
exit "$status"
