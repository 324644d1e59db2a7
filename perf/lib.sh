# Shared by perf/harness.sh, perf/extras.sh and perf/vs-nginx.sh (sourced).
# The caller sets WORK (a scratch directory), EDGE (the edgeshard binary to
# run; BASELINE, when set, another one run as the server "baseline"), NGINX_CONF (a template with PREFIX, PORT and ROOT), and for the
# peers HYPER and MAY; PROBE_PATH is the path that must answer before a
# server counts as up (default /plaintext). edgeshard serves $WORK/www (the
# static fixtures) when it exists; EDGE_ARGS adds flags (e.g.
# EDGE_ARGS="--file-inline-max 0" to send every file with sendfile).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER_PID=
# Starts NAME on 127.0.0.1:PORT pinned to CPU 1 and waits until it answers.
start_server() { # name port
    case $1 in
        edgeshard | baseline)
            local root=() bin=$EDGE
            [ "$1" = baseline ] && bin=$BASELINE
            [ -d "$WORK/www" ] && root=(--root "$WORK/www")
            # shellcheck disable=SC2086 # EDGE_ARGS is a list of flags
            taskset -c 1 "$bin" --shards 1 --listen "127.0.0.1:$2" "${root[@]}" ${EDGE_ARGS:-} >/dev/null 2>&1 &
            ;;
        hyper) taskset -c 1 "$HYPER" "127.0.0.1:$2" >/dev/null 2>&1 & ;;
        may) taskset -c 1 "$MAY" "127.0.0.1:$2" >/dev/null 2>&1 & ;;
        nginx)
            mkdir -p "$WORK/nginx"
            sed -e "s#PREFIX#$WORK/nginx#g" -e "s#PORT#$2#g" -e "s#ROOT#$WORK/www#g" \
                "$NGINX_CONF" > "$WORK/nginx/nginx.conf"
            taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    wait_up "http://127.0.0.1:$2${PROBE_PATH:-/plaintext}" && return 0
    echo "$1 did not start on port $2" >&2
    return 1
}

# Waits until URL answers (5 s at most).
wait_up() { # url
    for _ in $(seq 200); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.025
    done
    echo "nothing answers $1" >&2
    return 1
}

stop_server() { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }

# "utime stime" in clock ticks of a process and its child processes.
cpu_ticks() {
    local u=0 s=0 pid pu ps
    for pid in "$1" $(pgrep -P "$1" || true); do
        [ -r "/proc/$pid/stat" ] || continue
        read -r pu ps < <(awk '{print $14, $15}' "/proc/$pid/stat")
        u=$((u + pu)); s=$((s + ps))
    done
    echo "$u $s"
}
