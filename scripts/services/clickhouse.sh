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
#   CLICKHOUSE_TCP_PORT_SECURE  when set, also the native protocol over TLS
#                             on this port (9440 is usual), with certs.sh's
#                             server certificate            [unset]
#   CLICKHOUSE_CERTS_DIR      that certificate's directory, made by certs.sh
#                             when missing             [<services dir>/certs]
#   CLICKHOUSE_USER           when set with CLICKHOUSE_PASSWORD, one more
#                             user with that password (stored as SHA-256),
#                             reachable from 127.0.0.1 and ::1 [unset]
#   CLICKHOUSE_PASSWORD       that user's password      [unset]
#   CLICKHOUSE_KAFKA_SECURITY_PROTOCOL  how the server's Kafka engine reaches
#                             the broker (librdkafka's security.protocol:
#                             ssl or sasl_ssl), written to the <kafka> section
#                             of the server's configuration  [unset: plaintext]
#   CLICKHOUSE_KAFKA_SSL_CA   CA the Kafka engine trusts   [<certs dir>/ca.pem]
#   CLICKHOUSE_KAFKA_SSL_CERT, CLICKHOUSE_KAFKA_SSL_KEY
#                             client certificate and key for a broker that
#                             requires mutual TLS           [unset]
#   CLICKHOUSE_KAFKA_SASL_MECHANISM  with sasl_ssl [PLAIN: the SCRAM of the
#                             librdkafka 2.0.2 Debian links ClickHouse 18.16
#                             with is refused by Kafka 4.3]
#   CLICKHOUSE_KAFKA_SASL_USERNAME, CLICKHOUSE_KAFKA_SASL_PASSWORD
#                             the Kafka engine's SASL user  [unset]
#
# The plain native port stays on 127.0.0.1 whatever is set, for the
# readiness check and local tools.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="$SERVICES_DIR/clickhouse"
pidfile="$dir/clickhouse.pid"
tcp_port="${CLICKHOUSE_TCP_PORT:-9000}"
http_port="${CLICKHOUSE_HTTP_PORT:-8123}"
wait_seconds="${CLICKHOUSE_WAIT_SECONDS:-60}"
secure_port="${CLICKHOUSE_TCP_PORT_SECURE:-}"
certs_dir="${CLICKHOUSE_CERTS_DIR:-$SERVICES_DIR/certs}"
extra_user="${CLICKHOUSE_USER:-}"
extra_password="${CLICKHOUSE_PASSWORD:-}"
kafka_protocol="${CLICKHOUSE_KAFKA_SECURITY_PROTOCOL:-}"

write_config() {
	mkdir -p "$dir"
	clickhouse_config_xml clickhouse.sh "$dir" "$http_port" "$tcp_port" 268435456 "$(secure_config)
$(kafka_config)" >"$dir/config.xml"
	clickhouse_users_xml clickhouse.sh 4000000000 random "$(user_config)" >"$dir/users.xml"
}

# secure_config is the secure native port and the server's certificate.
secure_config() {
	[ -n "$secure_port" ] || return 0
	cat <<XML
    <tcp_port_secure>$secure_port</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>$certs_dir/server.pem</certificateFile>
            <privateKeyFile>$certs_dir/server.key</privateKeyFile>
            <caConfig>$certs_dir/ca.pem</caConfig>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
XML
}

# kafka_config is the <kafka> section: librdkafka properties (dots written
# as underscores) that every Kafka engine table of this server uses.
kafka_config() {
	[ -n "$kafka_protocol" ] || return 0
	echo "    <kafka>"
	echo "        <security_protocol>$(xml_escape "$kafka_protocol")</security_protocol>"
	echo "        <ssl_ca_location>$(xml_escape "${CLICKHOUSE_KAFKA_SSL_CA:-$certs_dir/ca.pem}")</ssl_ca_location>"
	if [ -n "${CLICKHOUSE_KAFKA_SSL_CERT:-}" ]; then
		echo "        <ssl_certificate_location>$(xml_escape "$CLICKHOUSE_KAFKA_SSL_CERT")</ssl_certificate_location>"
		echo "        <ssl_key_location>$(xml_escape "${CLICKHOUSE_KAFKA_SSL_KEY:-}")</ssl_key_location>"
	fi
	if [ -n "${CLICKHOUSE_KAFKA_SASL_USERNAME:-}" ]; then
		echo "        <sasl_mechanism>$(xml_escape "${CLICKHOUSE_KAFKA_SASL_MECHANISM:-PLAIN}")</sasl_mechanism>"
		echo "        <sasl_username>$(xml_escape "$CLICKHOUSE_KAFKA_SASL_USERNAME")</sasl_username>"
		echo "        <sasl_password>$(xml_escape "${CLICKHOUSE_KAFKA_SASL_PASSWORD:-}")</sasl_password>"
	fi
	echo "    </kafka>"
}

# user_config is the extra password user, its password stored as SHA-256.
user_config() {
	[ -n "$extra_user" ] || return 0
	local hash
	hash="$(printf '%s' "$extra_password" | sha256sum | cut -d' ' -f1)"
	cat <<XML
        <$extra_user>
            <password_sha256_hex>$hash</password_sha256_hex>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </$extra_user>
XML
}

xml_escape() {
	local s="$1"
	s="${s//&/&amp;}"
	s="${s//</&lt;}"
	s="${s//>/&gt;}"
	printf '%s' "$s"
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
	clickhouse_install
	# Where no policy forbids it, installing the package may also start the
	# distribution's own server on the same port.
	if ready; then
		log "a ClickHouse server not started by this script (the package's own service?) answers on port $tcp_port; using it"
		return 0
	fi
	if [ -n "$extra_user" ]; then
		[ -n "$extra_password" ] || die "CLICKHOUSE_USER is set without CLICKHOUSE_PASSWORD"
		[[ "$extra_user" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "CLICKHOUSE_USER must be letters, digits and '_'"
		[ "$extra_user" != default ] || die "CLICKHOUSE_USER must not be default (the passwordless local user)"
	fi
	if [ -n "$secure_port$kafka_protocol" ] && [ "$certs_dir" = "$SERVICES_DIR/certs" ]; then
		DOMINATION_SERVICES_DIR="$SERVICES_DIR" bash "$here/certs.sh" up
	fi
	write_config
	chmod 600 "$dir/config.xml" "$dir/users.xml"
	local bin
	bin="$(clickhouse_bin)"
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
	if [ -n "$secure_port" ]; then log "clickhouse secure native port: 127.0.0.1:$secure_port (trust $certs_dir/ca.pem)"; fi
	if [ -n "$extra_user" ]; then log "clickhouse user $extra_user (password from CLICKHOUSE_PASSWORD)"; fi
	if [ -n "$kafka_protocol" ]; then log "clickhouse's Kafka engine connects with security.protocol=$kafka_protocol"; fi
}

down() {
	stop_pidfile clickhouse "$pidfile"
}

running() { is_running "$pidfile" || ready; }

service_main "$@"
