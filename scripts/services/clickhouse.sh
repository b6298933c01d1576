#!/usr/bin/env bash
# clickhouse.sh up|down|status — run a ClickHouse server as a plain process.
#
# Installs Debian's clickhouse-server package if the binary is missing, writes
# the project's own configuration under $DOMINATION_SERVICES_DIR/clickhouse,
# starts the server in the background and waits until it answers a query.
# `up` is a no-op when the server it started is already running; `down` stops
# only the process it started (found through its pid file).
#
# Environment (defaults in brackets):
#   DOMINATION_SERVICES_DIR   data, logs and pid files [<repo>/.services]
#   CLICKHOUSE_TCP_PORT       native protocol port     [9000]
#   CLICKHOUSE_HTTP_PORT      HTTP port                [8123]
#   CLICKHOUSE_WAIT_SECONDS   readiness wait           [60]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="$SERVICES_DIR/clickhouse"
pidfile="$dir/clickhouse.pid"
tcp_port="${CLICKHOUSE_TCP_PORT:-9000}"
http_port="${CLICKHOUSE_HTTP_PORT:-8123}"
wait_seconds="${CLICKHOUSE_WAIT_SECONDS:-60}"

server_bin() {
	local b
	for b in clickhouse-server /usr/sbin/clickhouse-server /usr/bin/clickhouse; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

install_server() {
	if server_bin >/dev/null && command -v clickhouse-client >/dev/null; then
		return 0
	fi
	log "installing Debian's clickhouse-server and clickhouse-client"
	apt_install clickhouse-server clickhouse-client
	server_bin >/dev/null || die "clickhouse-server is not on PATH after installing it"
}

write_config() {
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log" "$dir/format_schemas"
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<!-- Written by scripts/services/clickhouse.sh; edits are overwritten on the next up. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
XML
	# The default profile is also the one the Kafka engine's background
	# consumers use: a short stream_flush_interval_ms makes consumed rows
	# visible within about a second instead of the stock 7.5 s.
	cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<!-- Written by scripts/services/clickhouse.sh; edits are overwritten on the next up. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
            <stream_flush_interval_ms>500</stream_flush_interval_ms>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML
}

ready() {
	# timeout: a port held by something that is not ClickHouse may never answer.
	timeout 5 clickhouse-client --host 127.0.0.1 --port "$tcp_port" -q "SELECT 1" >/dev/null 2>&1
}

# ready_or_exited stops the readiness wait early when the server has died.
ready_or_exited() {
	ready || ! is_running "$pidfile"
}

up() {
	if is_running "$pidfile"; then
		log "clickhouse already running (pid $(cat "$pidfile")) on port $tcp_port"
		return 0
	fi
	if ready; then
		log "a ClickHouse server not started by this script answers on port $tcp_port; using it"
		return 0
	fi
	install_server
	# Where no policy forbids it, installing the package may also start the
	# distribution's own server on the same port.
	if ready; then
		log "a ClickHouse server not started by this script (the package's own service?) answers on port $tcp_port; using it"
		return 0
	fi
	write_config
	local bin
	bin="$(server_bin)"
	log "starting clickhouse ($bin) with data in $dir"
	# setsid: the server must outlive the shell that started it.
	setsid "$bin" --config-file="$dir/config.xml" --pid-file="$pidfile" \
		>"$dir/log/stdout.log" 2>&1 </dev/null &
	local started=$!
	echo "$started" >"$pidfile"
	wait_until "clickhouse on 127.0.0.1:$tcp_port" "$wait_seconds" ready_or_exited || {
		tail -n 30 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 || true
		die "clickhouse did not become ready within ${wait_seconds}s"
	}
	is_running "$pidfile" || {
		tail -n 30 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 || true
		die "clickhouse exited while starting (is port $tcp_port or $http_port taken?)"
	}
	log "clickhouse ready: native 127.0.0.1:$tcp_port, http 127.0.0.1:$http_port, $(clickhouse-client --port "$tcp_port" -q 'SELECT version()')"
}

down() {
	stop_pidfile clickhouse "$pidfile"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) if is_running "$pidfile" || ready; then echo running; else echo stopped; exit 1; fi ;;
*) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
