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
