# Shared by the shell benchmarks (sourced, from the repository's root, after
# `set -euo pipefail`): needs, a scratch directory whose processes are all
# killed on exit, the release gateway, free ports, and signing in.
#   bench_init NAME TOOL...   checks the tools; sets $dir, $started, $gatehouse

bench_init() {
    bench_name=$1
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$bench_name: $tool is not installed" >&2; exit 1; }
    done
    dir=$(mktemp -d)
    # every process the benchmark starts, so an early exit leaves none behind
    started=$dir/started
    trap bench_cleanup EXIT
    # the binary, wherever CARGO_TARGET_DIR puts it
    cargo build --release --bin gatehouse >&2
    target=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    gatehouse=$target/release/gatehouse
}

bench_cleanup() {
    [ -f "$started" ] && while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$started"
    wait 2>/dev/null || true
    rm -rf "$dir"
}

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "$bench_name: nothing answers on port $1" >&2
    exit 1
}

# sign_in PORT: signs in as bench (password bench-password-1) through the
# login form; prints the Cookie header value: the session cookie alone, not
# the remembered user name.
sign_in() {
    local jar=$dir/jar.$1 token
    rm -f "$jar"
    token=$(curl -s -c "$jar" "http://127.0.0.1:$1/.gatehouse/login" |
        sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
    curl -s -o /dev/null -b "$jar" -c "$jar" \
        --data-urlencode username=bench --data-urlencode password=bench-password-1 \
        --data-urlencode rd=/ --data-urlencode "csrf_token=$token" \
        "http://127.0.0.1:$1/.gatehouse/login"
    awk '$6 == "gatehouse" { printf "%s=%s", $6, $7 }' "$jar"
}
