#!/usr/bin/env bash
# The classroom demo: a registry and one peer per script in demos/, all on
# loopback, their output interleaved with a name in front of each line.
# Exits 0 when every script succeeded; leaves no process behind.
#
# Usage: demos/run.sh [BIN_DIR]   (default: target/release)
# DEMO_PACE=SECONDS pauses before each step of the scripts (default 0).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../target/release}" && pwd)
# DEMO_WORK names the scratch folder (tests use it to check nothing is left running).
work=${DEMO_WORK:-$(mktemp -d)}
pace=${DEMO_PACE:-0}
mkdir -p "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$bin/registry" --listen 127.0.0.1:0 --store "$work/registry.db" --admin alice >"$work/registry.out" 2>"$work/registry.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "^registry certificate" "$work/registry.out" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's/^registry listening on //p' "$work/registry.out")
if [ -z "$addr" ]; then
    echo "the registry did not start:" >&2
    cat "$work/registry.log" >&2
    exit 1
fi
# The teacher reads the certificate's fingerprint to the class (or writes it
# on the board); the students' peers pin it, so nothing can sit in between.
fingerprint=$(sed -n 's/^registry certificate //p' "$work/registry.out")
echo "registry on $addr, certificate $fingerprint"
export LANCHAT_REGISTRY_FINGERPRINT="$fingerprint"
# Nothing of the demo lands in the user's own configuration.
export XDG_CONFIG_HOME="$work/config"

colors=(36 32 35 33 34)
i=0
peers=()
peer_pids=()
for script in "$here"/*.script; do
    name=$(basename "$script" .script)
    c=${colors[$((i % ${#colors[@]}))]}
    label=$(printf '\033[1;%sm%-6s\033[0m│' "$c" "$name")
    # The peer's own PID (not a pipeline's), so it can be waited on and killed.
    # Run from demos/, where alice's script finds the worksheet it sends.
    (cd "$here" && exec "$bin/peer" --registry "$addr" --script "$script" --color always \
        --pace "$pace" --log-dir "$work/logs" --download-dir "$work/downloads/$name") \
        > >(sed -u "s/^/$label /") 2>&1 &
    peer_pids+=($!)
    pids+=($!)
    peers+=("$name")
    i=$((i + 1))
done

# Each script has its own time-outs; this only bounds the whole run (a
# paced demo has about 40 paced steps, some at once).
limit=$(awk -v p="$pace" 'BEGIN { printf "%d", 30 + 40 * p }')
deadline=$((SECONDS + limit))
status=0
for k in "${!peer_pids[@]}"; do
    pid=${peer_pids[$k]}
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo: ${peers[$k]} still running after $limit s; stopping" >&2
        exit 1
    fi
    wait "$pid"
    code=$?
    if [ "$code" -ne 0 ]; then
        echo "demo: ${peers[$k]}'s script failed (exit $code)" >&2
        status=1
    fi
done
sleep 0.1 # let the last prefixed lines drain
[ "$status" -eq 0 ] && echo "demo: all ${#peers[@]} scripts succeeded"
exit "$status"
