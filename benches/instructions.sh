#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the same
# count on every run of the same binaries, whatever else the machine does.
# Each proxy runs twice under callgrind, once for 1,000 requests and once for
# 4,000 (one keep-alive connection, curl); the difference over 3,000 is the
# cost of a request without start-up. User space only: the kernel's TCP work,
# which is the same for every proxy here, is not counted.
#
#   bash benches/instructions.sh      # needs valgrind, nginx, curl, python3
#   KEEP=DIR bash benches/instructions.sh   # also keeps each callgrind profile
#                                           # in DIR (NAME.REQUESTS.out), for
#                                           # callgrind_annotate
set -euo pipefail
shopt -s inherit_errexit  # a failed check inside $(...) ends the script too
cd "$(dirname "$0")/.."

source benches/lib.sh
bench_init instructions.sh valgrind nginx curl python3

# the load benchmark's binary (bare Pingora), wherever CARGO_TARGET_DIR puts it
cargo bench --bench load --no-run >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; exit 1; }
bench_bin=$(sed -n 's/.*Executable benches\/load.rs (\(.*\))$/\1/p' "$dir/build.log" | head -1)
[ -n "$bench_bin" ] || { cat "$dir/build.log" >&2; echo "instructions.sh: no load benchmark binary" >&2; exit 1; }
case $bench_bin in /*) ;; *) bench_bin=$PWD/$bench_bin ;; esac

# nginx with one worker, in the foreground; $1 names it, $2 is its http block
nginx_conf() {
    cat >"$dir/$1.conf" <<EOF
worker_processes 1; daemon off; master_process off; pid $dir/$1.pid; error_log $dir/$1.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
$2
}
EOF
    echo "$dir/$1.conf"
}

upstream=$(port)
nginx -c "$(nginx_conf upstream "server { listen 127.0.0.1:$upstream; location / { return 200 \"ok\"; } }")" -p "$dir" 2>/dev/null &
echo $! >>"$started"
wait_port "$upstream"

# The gateway's config, its users file (one user, "bench") and its secret.
gw_port=$(port)
head -c 32 /dev/urandom >"$dir/secret.key"
hash=$(echo bench-password-1 | "$gatehouse" hash-password)
printf '[bench]\npassword = "%s"\ngroups = ["staff"]\n' "$hash" >"$dir/users.toml"
cat >"$dir/gatehouse.toml" <<EOF
[server]
listen = ["127.0.0.1:$gw_port"]
admin_listen = ""
threads = 1
secret_file = "secret.key"
upgrade_sock = "gatehouse.sock"
pid_file = "gatehouse.pid"

[[route]]
path_prefix = "/public/"
upstream = "127.0.0.1:$upstream"
access = "public"

[[route]]
path_prefix = "/"
upstream = "127.0.0.1:$upstream"
access = "login"

[users]
file = "users.toml"

[session]
cookie_secure = false
EOF

# Runs "$@" under callgrind, sends $n requests to $url (with $cookie), stops
# it; prints the instructions it executed. $stop is the signal that ends it.
counted() {
    local n=$1 port=$2 path=$3 cookie=$4 stop=$5 out=$dir/cg.$RANDOM
    shift 5
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1 &
    local pid=$!
    echo "$pid" >>"$started"
    wait_port "$port"
    if [ "$path" = /x ] && [ "$port" = "$gw_port" ]; then cookie=$(sign_in "$gw_port"); fi
    # Every setup must be proxied to the app: a 303 to the login page (a
    # cookie that did not sign in) would measure the wrong path.
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' ${cookie:+-H "Cookie: $cookie"} "http://127.0.0.1:$port$path")
    [ "$status" = 200 ] || { echo "instructions.sh: $path on port $port answered $status, not 200" >&2; exit 1; }
    curl -s -o /dev/null --fail ${cookie:+-H "Cookie: $cookie"} "http://127.0.0.1:$port$path?[1-$n]"
    kill "-$stop" "$pid"
    wait "$pid" || true
    if [ -n "${KEEP:-}" ] && [ -n "${label:-}" ]; then cp "$out" "$KEEP/$label.$n.out"; fi
    sed -n 's/^summary: //p' "$out"
}

# instructions per request of one setup: $1 port, $2 path, $3 stop signal, the rest the command
per_request() {
    local few many
    few=$(counted 1000 "$1" "$2" "" "$3" "${@:4}")
    many=$(counted 4000 "$1" "$2" "" "$3" "${@:4}")
    echo $(((many - few) / 3000))
}

front=$(port)
auth=$(port)
proxy_conf=$(nginx_conf front "upstream app { server 127.0.0.1:$upstream; keepalive 64; }
server { listen 127.0.0.1:$front; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }")
auth_front_conf=$(nginx_conf auth_front "upstream app { server 127.0.0.1:$upstream; keepalive 64; }
upstream auth { server 127.0.0.1:$auth; keepalive 64; }
server { listen 127.0.0.1:$front;
  location / { auth_request /_auth; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  location = /_auth { internal; proxy_pass http://auth; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; } }")
auth_conf=$(nginx_conf auth "server { listen 127.0.0.1:$auth; location / { return 204; } }")

nginx_proxy=$(per_request "$front" /x QUIT nginx -c "$proxy_conf" -p "$dir")
# the auth server runs under callgrind too: its requests are part of that design's cost
auth_total() {
    local n=$1 server front_count
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.authsrv.$n" nginx -c "$auth_conf" -p "$dir" >/dev/null 2>&1 &
    server=$!
    echo "$server" >>"$started"
    for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$auth/" && break; sleep 0.1; done
    front_count=$(counted "$n" "$front" /x "" QUIT nginx -c "$auth_front_conf" -p "$dir")
    kill -QUIT "$server"
    wait "$server" || true
    echo $((front_count + $(sed -n 's/^summary: //p' "$dir/cg.authsrv.$n")))
}
nginx_auth=$(( ($(auth_total 4000) - $(auth_total 1000)) / 3000 ))
bare_port=$(port)
bare=$(label=bare GATEHOUSE_BENCH_BARE_PINGORA="127.0.0.1:$bare_port 127.0.0.1:$upstream" RUST_LOG=warn \
    per_request "$bare_port" /x INT "$bench_bin")
public=$(label=public RUST_LOG=warn per_request "$gw_port" /public/x INT "$gatehouse" run -c "$dir/gatehouse.toml")
authed=$(label=authed RUST_LOG=warn per_request "$gw_port" /x INT "$gatehouse" run -c "$dir/gatehouse.toml")

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo
echo "| setup | instructions per request | / nginx proxy_pass |"
echo "|---|---|---|"
echo "| nginx proxy_pass (1 worker) | $nginx_proxy | 1.00x |"
echo "| nginx auth_request + auth server | $nginx_auth | $(ratio "$nginx_auth" "$nginx_proxy") |"
echo "| bare Pingora pass-through | $bare | $(ratio "$bare" "$nginx_proxy") |"
echo "| gateway, public route | $public | $(ratio "$public" "$nginx_proxy") |"
echo "| gateway, authenticated (memory store) | $authed | $(ratio "$authed" "$nginx_proxy") |"
echo
echo "gateway public / bare Pingora: $(ratio "$public" "$bare"); authenticated / public: $(ratio "$authed" "$public")"
