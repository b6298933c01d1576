#!/usr/bin/env bash
# kafka.sh up|down|status — run a single-node Apache Kafka broker (KRaft) as a
# plain Java process.
#
# The broker jars come from Maven Central (kafka/pom.xml beside this script)
# and run on the machine's Java 17+. Storage is formatted once; `up` is a no-op
# when the broker it started is already running; `down` stops only the process
# it started.
#
# Environment (defaults in brackets):
#   DOMINATION_SERVICES_DIR   data, logs and pid files [<repo>/.services]
#   KAFKA_PORT                client listener port     [9092]
#   KAFKA_CONTROLLER_PORT     KRaft controller port    [9093]
#   KAFKA_HEAP_OPTS           JVM heap                 [-Xms256m -Xmx1g]
#   KAFKA_WAIT_SECONDS        readiness wait           [90]
#   KAFKA_SASL_PORT           when set, also a SASL_PLAINTEXT listener on
#                             this port with mechanism PLAIN and one user [unset]
#   KAFKA_SASL_USERNAME       that user's name         [domination]
#   KAFKA_SASL_PASSWORD       that user's password     [domination-secret]
#   KAFKA_SSL_PORT            when set, also an SSL listener (TLS, no client
#                             certificate asked) on this port     [unset]
#   KAFKA_MTLS_PORT           when set, also an SSL listener that requires a
#                             client certificate signed by the CA [unset]
#   KAFKA_SASL_SSL_PORT       when set, also a SASL_SSL listener with
#                             SCRAM-SHA-512 (and SCRAM-SHA-256 and PLAIN) for
#                             the user above; the SCRAM credentials are
#                             written when the storage is formatted, so this
#                             needs a fresh data directory         [unset]
#   KAFKA_CERTS_DIR           the certificates for the TLS listeners, made
#                             by certs.sh when missing  [<services dir>/certs]
#
# The TLS listeners present certs.sh's server certificate (for localhost and
# 127.0.0.1); clients trust its ca.pem. The password of the SCRAM user may
# hold letters, digits, '-', '_' and '.'.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="$SERVICES_DIR/kafka"
pidfile="$dir/kafka.pid"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
wait_seconds="${KAFKA_WAIT_SECONDS:-90}"
sasl_port="${KAFKA_SASL_PORT:-}"
sasl_user="${KAFKA_SASL_USERNAME:-domination}"
sasl_password="${KAFKA_SASL_PASSWORD:-domination-secret}"
ssl_port="${KAFKA_SSL_PORT:-}"
mtls_port="${KAFKA_MTLS_PORT:-}"
sasl_ssl_port="${KAFKA_SASL_SSL_PORT:-}"
certs_dir="${KAFKA_CERTS_DIR:-$SERVICES_DIR/certs}"
keystore_password="${CERTS_KEYSTORE_PASSWORD:-domination-keystore}"

tls_wanted() { [ -n "$ssl_port$mtls_port$sasl_ssl_port" ]; }

fetch_jars() {
	maven_jars "Kafka broker" "$here/kafka/pom.xml" "$dir/libs"
}

# listen NAME PORT PROTOCOL adds the listener NAME on 127.0.0.1:PORT, with
# the security protocol PROTOCOL, to write_config's listeners.
listen() {
	listeners="$listeners,$1://127.0.0.1:$2"
	advertised="$advertised,$1://127.0.0.1:$2"
	protocols="$protocols,$1:$3"
}

write_config() {
	mkdir -p "$dir/data" "$dir/log"
	local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
	local advertised="PLAINTEXT://127.0.0.1:$port"
	local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	local sasl=""
	if [ -n "$sasl_port" ]; then
		listen SASL_PLAINTEXT "$sasl_port" SASL_PLAINTEXT
		sasl="sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$sasl_user\" password=\"$sasl_password\" user_$sasl_user=\"$sasl_password\";"
	fi
	local tls=""
	if tls_wanted; then
		tls="ssl.keystore.type=PKCS12
ssl.keystore.location=$certs_dir/server.p12
ssl.keystore.password=$keystore_password
ssl.key.password=$keystore_password
ssl.truststore.type=PEM
ssl.truststore.location=$certs_dir/ca.pem"
	fi
	if [ -n "$ssl_port" ]; then
		listen SSL "$ssl_port" SSL
		tls="$tls
listener.name.ssl.ssl.client.auth=none"
	fi
	if [ -n "$mtls_port" ]; then
		listen MTLS "$mtls_port" SSL
		tls="$tls
listener.name.mtls.ssl.client.auth=required"
	fi
	if [ -n "$sasl_ssl_port" ]; then
		listen SASL_SSL "$sasl_ssl_port" SASL_SSL
		tls="$tls
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$sasl_user=\"$sasl_password\";"
	fi
	cat >"$dir/server.properties" <<PROPS
# Written by scripts/services/kafka.sh; edits are overwritten on the next up.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
$sasl
$tls
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
message.max.bytes=4194304
log.retention.hours=24
log.segment.bytes=268435456
PROPS
	# It holds the SASL and keystore passwords.
	chmod 600 "$dir/server.properties"
	kafka_log4j_yaml "$dir/log/server.log" kafka.request.logger org.apache.kafka.controller >"$dir/log4j2.yaml"
}

java_cmd() {
	# shellcheck disable=SC2086
	java $heap -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$dir/log4j2.yaml" \
		-cp "$dir/libs/*" "$@"
}

# format_storage formats the KRaft storage once. SCRAM credentials live in
# the metadata log; in KRaft they can be written at format time, which is
# how the SASL_SSL listener's user is created.
format_storage() {
	local scram_stamp="$dir/data/.scram-users"
	if [ -e "$dir/data/meta.properties" ]; then
		if [ -n "$sasl_ssl_port" ] && ! grep -qx "SCRAM-SHA-512 $sasl_user" "$scram_stamp" 2>/dev/null; then
			die "the Kafka storage in $dir/data was formatted without the SCRAM-SHA-512 user $sasl_user; start with a fresh DOMINATION_SERVICES_DIR (or remove $dir/data) to create it"
		fi
		return 0
	fi
	local id
	id="$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
	local scram=()
	if [ -n "$sasl_ssl_port" ]; then
		[[ "$sasl_password" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_PASSWORD may hold only letters, digits, '.', '_' and '-' for the SCRAM user"
		scram=(--add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$sasl_password]"
			--add-scram "SCRAM-SHA-256=[name=$sasl_user,password=$sasl_password]")
	fi
	log "formatting KRaft storage (cluster id $id)"
	java_cmd kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" "${scram[@]}" >"$dir/log/format.log" 2>&1 ||
		{ cat "$dir/log/format.log" >&2; die "formatting Kafka storage failed"; }
	if [ -n "$sasl_ssl_port" ]; then
		echo "SCRAM-SHA-512 $sasl_user" >"$scram_stamp"
	fi
}

# ready succeeds when the broker accepts connections and has elected itself
# controller; a bare TCP check races the metadata log replay.
ready() {
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 1
	grep -q "Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started" "$dir/log/server.log" 2>/dev/null
}

up() {
	if is_running "$pidfile"; then
		log "kafka already running (pid $(cat "$pidfile")) on port $port"
		return 0
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		log "a broker not started by this script answers on port $port; using it"
		return 0
	fi
	fetch_jars
	if tls_wanted && [ "$certs_dir" = "$SERVICES_DIR/certs" ]; then
		DOMINATION_SERVICES_DIR="$SERVICES_DIR" bash "$here/certs.sh" up
	fi
	if tls_wanted; then
		[ -s "$certs_dir/server.p12" ] || die "no server keystore in $certs_dir (KAFKA_CERTS_DIR); run certs.sh"
	fi
	write_config
	format_storage
	: >"$dir/log/server.log"
	log "starting kafka with data in $dir"
	setsid bash -c 'exec "$@"' _ java $heap -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$dir/log4j2.yaml" \
		-cp "$dir/libs/*" kafka.Kafka "$dir/server.properties" \
		>"$dir/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	wait_until "kafka on 127.0.0.1:$port" "$wait_seconds" ready || {
		tail -n 40 "$dir/log/server.log" "$dir/log/stdout.log" >&2 || true
		die "kafka did not become ready within ${wait_seconds}s"
	}
	log "kafka ready: 127.0.0.1:$port ($(ls "$dir/libs" | sed -n "s/^kafka_2.13-\(.*\)\.jar$/Apache Kafka \1/p"))"
	if [ -n "$ssl_port" ]; then log "kafka TLS listener: 127.0.0.1:$ssl_port (trust $certs_dir/ca.pem)"; fi
	if [ -n "$mtls_port" ]; then log "kafka mutual-TLS listener: 127.0.0.1:$mtls_port (client certificate $certs_dir/client.pem)"; fi
	if [ -n "$sasl_ssl_port" ]; then log "kafka SASL_SSL listener: 127.0.0.1:$sasl_ssl_port (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, user $sasl_user)"; fi
}

down() {
	stop_pidfile kafka "$pidfile"
}

running() { is_running "$pidfile"; }

service_main "$@"
