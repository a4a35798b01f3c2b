#!/usr/bin/env bash
# Proxied HTML throughput with `ui.inject_session_script` on and off: the
# same release gateway (1 thread) in front of nginx serving a 16 KB HTML page
# (Content-Length, `</body>` at the end, as a Django or PHP page would be),
# signed in, `wrk -t1 -c32`. Runs alternate on/off for ROUNDS rounds of
# SECONDS each and report the medians and the on/off ratio, the gateway's
# CPU time per request, and the on/plain ratio: the gateway with injection
# on, serving the same page as text/plain, measured in the same process.
#
#   bash benches/session_script.sh     # needs wrk, nginx, curl, python3
#   ROUNDS=5 SECONDS_PER_RUN=5 bash benches/session_script.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source benches/lib.sh
bench_init session_script.sh wrk nginx curl python3
rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-5}

# The page: about 16 KB of ordinary markup, `</body>` near the end.
python3 - "$dir/page.html" <<'PY'
import sys
def page(n):
    rows = "".join(f"<tr><td>{i}</td><td>Invoice {i:05d}</td><td>ACME Ltd.</td><td>&euro; {i * 7 % 1000}.00</td></tr>\n" for i in range(n))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoices</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><header><nav><a href="/">Home</a> <a href="/invoices/">Invoices</a></nav></header>
<main><h1>Invoices</h1><table>{rows}</table></main>
<footer>ACME back office</footer>
</body></html>
"""
n = 1
while len(page(n + 1)) <= 16384:
    n += 1
open(sys.argv[1], "w").write(page(n))
PY
page_bytes=$(wc -c <"$dir/page.html")

upstream=$(port)
cat >"$dir/upstream.conf" <<EOF
worker_processes 1; daemon off; master_process off; pid $dir/upstream.pid; error_log $dir/upstream.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  server { listen 127.0.0.1:$upstream; root $dir; location / { default_type text/html; rewrite ^ /page.html break; }
    location /plain/ { types { } default_type text/plain; rewrite ^ /page.html break; } }
}
EOF
# The gateway has a core of its own and the client and the app share the
# other: with all three free to move, one run's throughput swung by ±20%
# with where the scheduler put them, four times the difference measured.
# (Arrays, not functions: `$!` must be the process itself, to be stopped.)
gateway_core=()
client_core=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    gateway_core=(taskset -c 1)
    client_core=(taskset -c 0)
fi
"${client_core[@]}" nginx -c "$dir/upstream.conf" -p "$dir" 2>/dev/null &
echo $! >>"$started"
wait_port "$upstream"

head -c 32 /dev/urandom >"$dir/secret.key"
hash=$(echo bench-password-1 | "$gatehouse" hash-password)
printf '[bench]\npassword = "%s"\n' "$hash" >"$dir/users.toml"

# gateway NAME INJECT: starts one; prints its port
gateway() {
    local p
    p=$(port)
    cat >"$dir/$1.toml" <<EOF
[server]
listen = ["127.0.0.1:$p"]
admin_listen = ""
threads = 1
secret_file = "secret.key"
upgrade_sock = "$1.sock"
pid_file = "$1.pid"

[[route]]
path_prefix = "/"
upstream = "127.0.0.1:$upstream"
access = "login"

[users]
file = "users.toml"

[session]
cookie_secure = false

[ui]
inject_session_script = $2
EOF
    # stdout away from the $(...) that reads the port, or it waits for the gateway
    RUST_LOG=warn "${gateway_core[@]}" "$gatehouse" run -c "$dir/$1.toml" >/dev/null 2>>"$dir/$1.err" &
    echo $! >>"$started"
    echo $! >"$dir/$1.pid_of_port_$p"
    wait_port "$p"
    echo "$p"
}

# CALIBRATE=1: both gateways off (an A/A run), to see what "the same"
# measures on this machine.
calibrate=${CALIBRATE:-0}
off=$(gateway off false)
if [ "$calibrate" = 1 ]; then on=$(gateway on false); else on=$(gateway on true); fi
off_cookie=$(sign_in "$off")
on_cookie=$(sign_in "$on")

# Both serve the app's page signed in (200, the page itself), and the
# rewrite is really there (and only there).
page_on=$(curl -s -w '\n%{http_code}' -H "Cookie: $on_cookie" "http://127.0.0.1:$on/invoices/")
page_off=$(curl -s -w '\n%{http_code}' -H "Cookie: $off_cookie" "http://127.0.0.1:$off/invoices/")
case $calibrate:$page_on in
    1:*session.js*) echo "session_script.sh: a tag with injection off" >&2; exit 1 ;;
    1:*'ACME back office'*200) ;;
    0:*'ACME back office'*'session.js" defer></script></body>'*200) ;;
    *) echo "session_script.sh: the injected page is not the app's page with the tag: $(tail -c 300 <<<"$page_on")" >&2; exit 1 ;;
esac
page_plain=$(curl -s -w '\n%{http_code}' -H "Cookie: $on_cookie" "http://127.0.0.1:$on/plain/")
case $page_plain in
    *session.js*) echo "session_script.sh: a tag in a text/plain answer" >&2; exit 1 ;;
    *'ACME back office'*200) ;;
    *) echo "session_script.sh: /plain/ does not serve the page: $(tail -c 300 <<<"$page_plain")" >&2; exit 1 ;;
esac
case $page_off in
    *session.js*) echo "session_script.sh: a tag with injection off" >&2; exit 1 ;;
    *'ACME back office'*200) ;;
    *) echo "session_script.sh: injection off does not serve the app's page: $(tail -c 300 <<<"$page_off")" >&2; exit 1 ;;
esac

# cpu_ticks PORT: the user and system CPU time, in clock ticks, that the
# gateway on PORT has used so far
cpu_ticks() {
    local pid
    pid=$(cat "$dir"/*.pid_of_port_"$1")
    # the fields after the command name, which is in parentheses
    sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}
ticks_per_second=$(getconf CLK_TCK)

# run PORT COOKIE [PATH]: "requests/s CPU-µs-per-request" of one wrk run
run() {
    local out before after url="http://127.0.0.1:$1${3:-/invoices/}"
    "${client_core[@]}" wrk -t1 -c32 -d1s -H "Cookie: $2" "$url" >/dev/null
    before=$(cpu_ticks "$1")
    out=$("${client_core[@]}" wrk -t1 -c32 -d"${seconds}s" --latency -H "Cookie: $2" "$url")
    after=$(cpu_ticks "$1")
    if grep -q "Non-2xx" <<<"$out"; then echo "session_script.sh: errors: $out" >&2; exit 1; fi
    awk -v ticks=$((after - before)) -v hz="$ticks_per_second" '
        / requests in / { n = $1 }
        /Requests\/sec:/ { rate = $2 }
        END { printf "%s %.2f\n", rate, ticks * 1e6 / hz / n }' <<<"$out"
}

echo "page: $page_bytes bytes; $rounds rounds of ${seconds}s, wrk -t1 -c32, gateway threads = 1"
echo "(the gateway pinned to a core of its own: ${gateway_core[*]:-not pinned})"
# Two comparisons. on/off: two gateways, the setting on and off, as the
# issue asks. on/plain: the gateway with the setting on, serving the same
# page as text/plain (not rewritten) from one process, so whatever differs
# between two processes (where the scheduler and the allocator put them)
# drops out; two gateways both off measured 0.83-1.12 on this machine.
ratios=()
cost_ratios=()
same_ratios=()
offs=()
ons=()
plains=()
off_cpus=()
on_cpus=()
plain_cpus=()
for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then
        a=$(run "$off" "$off_cookie"); b=$(run "$on" "$on_cookie"); c=$(run "$on" "$on_cookie" /plain/)
    else
        c=$(run "$on" "$on_cookie" /plain/); b=$(run "$on" "$on_cookie"); a=$(run "$off" "$off_cookie")
    fi
    read -r a a_cpu <<<"$a"
    read -r b b_cpu <<<"$b"
    read -r c c_cpu <<<"$c"
    offs+=("$a"); ons+=("$b"); plains+=("$c")
    off_cpus+=("$a_cpu"); on_cpus+=("$b_cpu"); plain_cpus+=("$c_cpu")
    ratios+=("$(python3 -c "print(f'{$b / $a:.4f}')")")
    cost_ratios+=("$(python3 -c "print(f'{$b_cpu / $a_cpu:.4f}')")")
    same_ratios+=("$(python3 -c "print(f'{$b / $c:.4f}')")")
    echo "round $r: off $a req/s ($a_cpu µs CPU/request), on $b ($b_cpu µs), plain $c ($c_cpu µs); on/off ${ratios[-1]}, on/plain ${same_ratios[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median: off $(median "${offs[@]}") req/s, on $(median "${ons[@]}") req/s, on/off $(median "${ratios[@]}") (per-round ratios: ${ratios[*]})"
echo "median CPU per request: off $(median "${off_cpus[@]}") µs, on $(median "${on_cpus[@]}") µs, on/off $(median "${cost_ratios[@]}") (per-round: ${cost_ratios[*]})"
echo "one process: on $(median "${ons[@]}") req/s, the same page as text/plain $(median "${plains[@]}") req/s, on/plain $(median "${same_ratios[@]}") (per-round: ${same_ratios[*]})"

# Side by side: both gateways share the one core and are loaded at the same
# time, each by its own wrk, so whatever the machine does in those seconds
# it does to both; each gets about half the core, and the ratio of their
# requests/s is the ratio of their costs. The sequential runs above swing
# with the machine between runs (two identical gateways: 0.83-1.12x).
# pair FIRST: both loaded at once, "off" started first unless FIRST=on (the
# order alternates by round, so a head start cancels out)
pair() {
    local a_out=$dir/pair.off b_out=$dir/pair.on a b
    if [ "$1" = on ]; then
        "${client_core[@]}" wrk -t1 -c32 -d"${seconds}s" -H "Cookie: $on_cookie" "http://127.0.0.1:$on/invoices/" >"$b_out" &
        b=$!
    fi
    "${client_core[@]}" wrk -t1 -c32 -d"${seconds}s" -H "Cookie: $off_cookie" "http://127.0.0.1:$off/invoices/" >"$a_out" &
    a=$!
    if [ "$1" != on ]; then
        "${client_core[@]}" wrk -t1 -c32 -d"${seconds}s" -H "Cookie: $on_cookie" "http://127.0.0.1:$on/invoices/" >"$b_out" &
        b=$!
    fi
    wait "$a" "$b"
    if grep -q "Non-2xx" "$a_out" "$b_out"; then echo "session_script.sh: errors side by side" >&2; exit 1; fi
    echo "$(awk '/Requests\/sec:/ { print $2 }' "$a_out") $(awk '/Requests\/sec:/ { print $2 }' "$b_out")"
}
pair_ratios=()
pair off >/dev/null # warm-up
for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then first=off; else first=on; fi
    read -r a b <<<"$(pair "$first")"
    pair_ratios+=("$(python3 -c "print(f'{$b / $a:.4f}')")")
    echo "side by side, round $r ($first started first): off $a req/s, on $b req/s, on/off ${pair_ratios[-1]}"
done
echo "side by side: on/off $(median "${pair_ratios[@]}") (per-round: ${pair_ratios[*]})"
