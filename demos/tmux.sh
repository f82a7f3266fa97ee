#!/usr/bin/env bash
# The classroom demo in tmux, for a projector: the three students side by
# side, each pane a real interactive peer that plays its script from
# demos/ (each step shown as typed, DEMO_PACE seconds apart) and then stays
# for the teacher to use; the registry's log in a strip below.
#
# Usage: demos/tmux.sh [BIN_DIR]   (default: target/release)
#   DEMO_PACE=SECONDS        pause before each step (default 2)
#   DEMO_TMUX_SOCKET=NAME    tmux server socket (-L; default: the usual server)
#   DEMO_TMUX_ATTACH=0       start the session without attaching (tests)
#   DEMO_WORK=DIR            scratch folder (registry database, logs)
# The session is "lanchat-demo"; `tmux kill-session -t lanchat-demo` ends
# it and every process in it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../target/release}" && pwd)
pace=${DEMO_PACE:-2}
work=${DEMO_WORK:-$(mktemp -d)}
mkdir -p "$work"
session=lanchat-demo
tm() {
    if [ -n "${DEMO_TMUX_SOCKET:-}" ]; then
        tmux -L "$DEMO_TMUX_SOCKET" "$@"
    else
        tmux "$@"
    fi
}
command -v tmux >/dev/null || { echo "demo-tmux needs tmux (apt install tmux)" >&2; exit 1; }
if tm has-session -t "$session" 2>/dev/null; then
    echo "a $session session is already running: tmux kill-session -t $session" >&2
    exit 1
fi

# The registry, in the first pane; its address is read from its output.
tm new-session -d -s "$session" -x 240 -y 60 \
    "'$bin/registry' --listen 127.0.0.1:0 --store '$work/registry.db' --no-announce --admin alice 2>&1 | tee '$work/registry.out'"
tm set-option -t "$session" remain-on-exit on >/dev/null
tm select-pane -t "$session" -T registry
addr=
fingerprint=
for _ in $(seq 100); do
    addr=$(sed -n 's/^registry listening on //p' "$work/registry.out" 2>/dev/null)
    fingerprint=$(sed -n 's/^registry certificate //p' "$work/registry.out" 2>/dev/null)
    [ -n "$addr" ] && [ -n "$fingerprint" ] && break
    sleep 0.05
done
if [ -z "$addr" ]; then
    echo "the registry did not start:" >&2
    cat "$work/registry.out" >&2
    tm kill-session -t "$session"
    exit 1
fi

# One pane per script, side by side above the registry, equal widths:
# each splits the one before it, keeping its share for the ones to come.
scripts=("$here"/*.script)
n=${#scripts[@]}
pane=
for k in "${!scripts[@]}"; do
    script=${scripts[$k]}
    name=$(basename "$script" .script)
    cmd="cd '$here' && exec env XDG_CONFIG_HOME='$work/config' '$bin/peer' --registry $addr --registry-fingerprint $fingerprint --bind 127.0.0.1 --script '$script' --stay --pace $pace --log-dir '$work/logs' --download-dir '$work/downloads/$name'"
    if [ -z "$pane" ]; then
        pane=$(tm split-window -v -b -l 80% -t "$session" -P -F '#{pane_id}' "$cmd")
    else
        share=$((100 * (n - k) / (n - k + 1)))
        pane=$(tm split-window -h -l "$share%" -t "$pane" -P -F '#{pane_id}' "$cmd")
    fi
    tm select-pane -t "$pane" -T "$name"
done
tm set-option -t "$session" pane-border-status top >/dev/null
tm set-option -t "$session" pane-border-format ' #{pane_title} ' >/dev/null
echo "demo in tmux session $session (registry on $addr, scratch in $work)"
if [ "${DEMO_TMUX_ATTACH:-1}" != 0 ]; then
    # Already inside tmux: switch to the demo rather than nest it.
    if [ -n "${TMUX:-}" ] && [ -z "${DEMO_TMUX_SOCKET:-}" ]; then
        exec tmux switch-client -t "$session"
    fi
    exec tmux ${DEMO_TMUX_SOCKET:+-L "$DEMO_TMUX_SOCKET"} attach -t "$session"
fi
