# lib.sh — helpers shared by the service scripts. Sourced, never run.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${DOMINATION_SERVICES_DIR:-$repo_root/.services}"
mkdir -p "$SERVICES_DIR"

log() { printf '%s [services] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install PKG... installs Debian packages, running apt-get update once per
# machine first (apt-get install fails on a machine whose lists were never read).
apt_install() {
	command -v apt-get >/dev/null || die "apt-get is not available to install $*; install it yourself"
	local sudo=""
	if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
	if [ ! -e "$SERVICES_DIR/.apt-updated" ]; then
		$sudo apt-get update -q >&2 || die "apt-get update failed"
		touch "$SERVICES_DIR/.apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >&2 || die "apt-get install $* failed"
}

# is_running PIDFILE succeeds when the pid in PIDFILE is a live process.
is_running() {
	[ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# wait_until WHAT SECONDS CMD... polls CMD every half second until it
# succeeds or SECONDS pass.
wait_until() {
	local what="$1" seconds="$2"
	shift 2
	local deadline=$((SECONDS + seconds))
	while ((SECONDS < deadline)); do
		if "$@"; then return 0; fi
		sleep 0.5
	done
	log "timed out waiting for $what"
	return 1
}

# stop_pidfile NAME PIDFILE stops the process in PIDFILE: TERM, then KILL
# after 20 s. A missing or stale pid file is not an error.
stop_pidfile() {
	local name="$1" pidfile="$2"
	if ! is_running "$pidfile"; then
		log "$name is not running (no live process in $pidfile)"
		rm -f "$pidfile"
		return 0
	fi
	local pid
	pid="$(cat "$pidfile")"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 20))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop within 20s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# kafka_engine_profile prints the settings of the default profile, the one
# the Kafka engine's background inserts run with, that clickhouse.sh and
# cluster.sh both write:
# - a short stream_flush_interval_ms makes consumed rows visible within about
#   a second instead of the stock 7.5 s;
# - before 19.14 the engine commits its offsets before the rows it squashed
#   for the view are written: with no squashing, a block is written before
#   that commit, so a killed server re-reads it instead of losing it.
kafka_engine_profile() {
	cat <<'XML'
            <stream_flush_interval_ms>500</stream_flush_interval_ms>
            <min_insert_block_size_rows>0</min_insert_block_size_rows>
            <min_insert_block_size_bytes>0</min_insert_block_size_bytes>
XML
}

# services VERB (up or down) starts or stops the services of up.sh and
# down.sh: with docker compose or the plain-process scripts as
# DOMINATION_SERVICES says (auto: docker when an engine answers), in the
# TOPOLOGY single or cluster.
services() {
	local verb="$1" mode="${DOMINATION_SERVICES:-auto}" topology="${TOPOLOGY:-single}"
	if [ "$mode" = auto ]; then
		if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=process; fi
	fi
	local here="$repo_root/scripts/services"
	local compose=(docker compose -f "$repo_root/docker-compose.yml")
	local cluster=(kafka-1 kafka-2 kafka-3 zookeeper clickhouse-1 clickhouse-2)
	case "$mode/$topology/$verb" in
	docker/single/up) exec "${compose[@]}" up --wait kafka clickhouse ;;
	docker/single/down) exec "${compose[@]}" down ;;
	docker/cluster/up) exec "${compose[@]}" --profile cluster up --wait "${cluster[@]}" ;;
	docker/cluster/down) exec "${compose[@]}" --profile cluster stop "${cluster[@]}" ;;
	process/single/up)
		bash "$here/clickhouse.sh" up
		bash "$here/kafka.sh" up
		;;
	process/single/down)
		bash "$here/kafka.sh" down
		bash "$here/clickhouse.sh" down
		;;
	process/cluster/*) exec bash "$here/cluster.sh" "$verb" ;;
	*/single/* | */cluster/*) echo "DOMINATION_SERVICES must be auto, docker or process" >&2; exit 2 ;;
	*) echo "TOPOLOGY must be single or cluster" >&2; exit 2 ;;
	esac
}

# service_main VERB runs the sourcing script's up or down, or says whether its
# service runs by its function running.
service_main() {
	case "${1:-}" in
	up) up ;;
	down) down ;;
	status) if running; then echo running; else echo stopped; exit 1; fi ;;
	*) echo "usage: $0 up|down|status" >&2; exit 2 ;;
	esac
}

# maven_jars WHAT POM LIBS copies the runtime jars of POM into LIBS once per
# version of the pom, installing Java and Maven when they are missing.
maven_jars() {
	local what="$1" pom="$2" libs="$3"
	if jars_current "$pom" "$libs"; then return 0; fi
	command -v java >/dev/null || apt_install openjdk-17-jre-headless
	command -v mvn >/dev/null || apt_install maven
	log "fetching the $what jars from Maven Central"
	rm -rf "$libs"
	mkdir -p "$libs"
	mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >&2 ||
		die "mvn could not fetch the $what jars (see above)"
	sha256sum "$pom" | cut -d' ' -f1 >"$libs/.pom.sha"
}

# jars_current POM LIBS succeeds when LIBS holds the jars of this version of
# POM.
jars_current() {
	[ -s "$2/.pom.sha" ] && [ "$(cat "$2/.pom.sha")" = "$(sha256sum "$1" | cut -d' ' -f1)" ]
}

# kafka_log4j_yaml LOGFILE LOGGER... prints a broker's log4j2 configuration:
# INFO into LOGFILE, and only warnings from each LOGGER.
kafka_log4j_yaml() {
	local file="$1" logger
	shift
	cat <<YAML
Configuration:
  Appenders:
    File:
      name: server
      fileName: "$file"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: server
    Logger:
YAML
	for logger in "$@"; do
		printf '      - name: %s\n        level: WARN\n' "$logger"
	done
}

# clickhouse_bin prints the path of the ClickHouse server binary.
clickhouse_bin() {
	local b
	for b in clickhouse-server /usr/sbin/clickhouse-server /usr/bin/clickhouse; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

# clickhouse_install installs Debian's server and client when either is
# missing.
clickhouse_install() {
	if clickhouse_bin >/dev/null && command -v clickhouse-client >/dev/null; then
		return 0
	fi
	log "installing Debian's clickhouse-server and clickhouse-client"
	apt_install clickhouse-server clickhouse-client
	clickhouse_bin >/dev/null || die "clickhouse-server is not on PATH after installing it"
}

# clickhouse_config_xml SCRIPT DIR HTTP_PORT TCP_PORT CACHE_BYTES MORE makes
# a server's directories under DIR and prints its config.xml, with the XML
# MORE at its end.
clickhouse_config_xml() {
	local script="$1" dir="$2" http_port="$3" tcp_port="$4" cache="$5" more="$6"
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log" "$dir/format_schemas"
	cat <<XML
<?xml version="1.0"?>
<!-- Written by scripts/services/$script; edits are overwritten on the next up. -->
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
    <uncompressed_cache_size>$cache</uncompressed_cache_size>
    <mark_cache_size>$cache</mark_cache_size>
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
$more
</yandex>
XML
}

# clickhouse_users_xml SCRIPT MAX_MEMORY LOAD_BALANCING MORE prints a
# server's users.xml: the passwordless local default user, the users in the
# XML MORE, and the default profile, which is also the one the Kafka
# engine's background consumers use (kafka_engine_profile).
clickhouse_users_xml() {
	local script="$1" max_memory="$2" load_balancing="$3" more="$4"
	cat <<XML
<?xml version="1.0"?>
<!-- Written by scripts/services/$script; edits are overwritten on the next up. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>$max_memory</max_memory_usage>
            <load_balancing>$load_balancing</load_balancing>
$(kafka_engine_profile)
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
$more
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
