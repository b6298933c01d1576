#!/usr/bin/env bash
# cluster.sh up|down|status|env — run the production topology as plain
# processes: a 3-broker KRaft Kafka cluster (replication factor 3,
# min.insync.replicas 2), one ZooKeeper, and a ClickHouse cluster of one shard
# with 2 replicas coordinated by that ZooKeeper.
#
# Everything lives under $DOMINATION_SERVICES_DIR/cluster on its own ports, so
# it runs beside the single-node services of kafka.sh and clickhouse.sh. `up`
# starts whichever member is not running (so it also restarts one that was
# killed) and waits until every member is ready; `down` stops only the
# processes it started. `env` prints the settings domination needs to use the
# cluster, ready for `export $(bash scripts/services/cluster.sh env)`.
#
# Environment (defaults in brackets):
#   DOMINATION_SERVICES_DIR        data, logs and pid files [<repo>/.services]
#   CLUSTER_NAME                   ClickHouse cluster name  [domination]
#   CLUSTER_KAFKA_PORTS            client ports, one a broker [29092 29093 29094]
#   CLUSTER_KAFKA_CONTROLLER_PORTS KRaft controller ports   [29192 29193 29194]
#   CLUSTER_ZOOKEEPER_PORT         ZooKeeper client port    [22181]
#   CLUSTER_CLICKHOUSE_PORTS       native ports, one a replica [29000 29001]
#   CLUSTER_CLICKHOUSE_HTTP_PORTS  HTTP ports               [28123 28124]
#   CLUSTER_CLICKHOUSE_INTERSERVER_PORTS replication ports  [29009 29010]
#   CLUSTER_HEAP_OPTS              heap of each JVM         [-Xms128m -Xmx512m]
#   CLUSTER_WAIT_SECONDS           readiness wait           [120]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="$SERVICES_DIR/cluster"
name="${CLUSTER_NAME:-domination}"
read -r -a kafka_ports <<<"${CLUSTER_KAFKA_PORTS:-29092 29093 29094}"
read -r -a controller_ports <<<"${CLUSTER_KAFKA_CONTROLLER_PORTS:-29192 29193 29194}"
zk_port="${CLUSTER_ZOOKEEPER_PORT:-22181}"
read -r -a ch_ports <<<"${CLUSTER_CLICKHOUSE_PORTS:-29000 29001}"
read -r -a ch_http_ports <<<"${CLUSTER_CLICKHOUSE_HTTP_PORTS:-28123 28124}"
read -r -a ch_interserver_ports <<<"${CLUSTER_CLICKHOUSE_INTERSERVER_PORTS:-29009 29010}"
heap="${CLUSTER_HEAP_OPTS:--Xms128m -Xmx512m}"
wait_seconds="${CLUSTER_WAIT_SECONDS:-120}"

((${#controller_ports[@]} == ${#kafka_ports[@]})) || die "CLUSTER_KAFKA_CONTROLLER_PORTS needs one port per broker"
((${#ch_http_ports[@]} == ${#ch_ports[@]} && ${#ch_interserver_ports[@]} == ${#ch_ports[@]})) ||
	die "CLUSTER_CLICKHOUSE_HTTP_PORTS and _INTERSERVER_PORTS need one port per replica"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive PIDFILE is is_running, except that a zombie is dead: a member killed
# with SIGKILL stays one until something reaps it, and `up` must restart it.
alive() {
	is_running "$1" || return 1
	local state
	state="$(sed 's/.*) //' "/proc/$(cat "$1")/stat" 2>/dev/null | cut -d' ' -f1)"
	[ -n "$state" ] && [ "$state" != Z ]
}

# port_free PORT NAME fails when something answers on PORT: a cluster member
# never shares a port with a process it did not start.
port_free() {
	if listening "$1"; then die "port $1 for $2 is taken by a process cluster.sh did not start"; fi
}

# fetch_jars NAME POM copies the jars of POM into $dir/NAME-libs once per
# version of the pom.
fetch_jars() {
	local libs="$dir/$1-libs" pom="$2"
	if jars_current "$pom" "$libs"; then return 0; fi
	# The single-node script may have fetched the same pom already: link its jars.
	local single="$SERVICES_DIR/$1/libs"
	if jars_current "$pom" "$single"; then
		rm -rf "$libs"
		if cp -al "$single" "$libs" 2>/dev/null || cp -a "$single" "$libs"; then return 0; fi
	fi
	maven_jars "$1" "$pom" "$libs"
}

# start_java PIDFILE LOG ARGS... starts a JVM in its own session.
start_java() {
	local pidfile="$1" out="$2"
	shift 2
	# shellcheck disable=SC2086
	setsid java $heap -XX:+UseG1GC -Djava.awt.headless=true "$@" >"$out" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

# --- ZooKeeper ---------------------------------------------------------------

zk_dir="$dir/zookeeper"

# zk_ready asks "srvr", which names the mode only once the server serves
# requests ("ruok" answers imok before that).
zk_ready() {
	local answer
	answer="$({ exec 3<>"/dev/tcp/127.0.0.1/$zk_port"; } 2>/dev/null && printf srvr >&3 && timeout 2 cat <&3)" || return 1
	[[ "$answer" == *"Mode: standalone"* ]]
}

zk_up() {
	if alive "$zk_dir/pid"; then return 0; fi
	port_free "$zk_port" zookeeper
	fetch_jars zookeeper "$here/zookeeper/pom.xml"
	mkdir -p "$zk_dir/data" "$zk_dir/log"
	cat >"$zk_dir/zoo.cfg" <<CFG
# Written by scripts/services/cluster.sh; edits are overwritten on the next up.
tickTime=2000
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr
autopurge.purgeInterval=1
CFG
	log "starting zookeeper on 127.0.0.1:$zk_port"
	start_java "$zk_dir/pid" "$zk_dir/log/stdout.log" \
		-Dorg.slf4j.simpleLogger.logFile="$zk_dir/log/zookeeper.log" \
		-Dorg.slf4j.simpleLogger.showDateTime=true \
		-cp "$dir/zookeeper-libs/*" org.apache.zookeeper.server.ZooKeeperServerMain "$zk_dir/zoo.cfg"
}

# --- Kafka -------------------------------------------------------------------

kafka_node_dir() { echo "$dir/kafka-$1"; }

kafka_config() {
	local id="$1" node
	node="$(kafka_node_dir "$id")"
	local port="${kafka_ports[id - 1]}" controller="${controller_ports[id - 1]}"
	local voters="" i
	for i in "${!controller_ports[@]}"; do
		voters="${voters:+$voters,}$((i + 1))@127.0.0.1:${controller_ports[i]}"
	done
	local rf=3 isr=2
	if ((${#kafka_ports[@]} < 3)); then rf=${#kafka_ports[@]} isr=1; fi
	mkdir -p "$node/data" "$node/log"
	cat >"$node/server.properties" <<PROPS
# Written by scripts/services/cluster.sh; edits are overwritten on the next up.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$node/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
num.io.threads=2
num.network.threads=2
background.threads=2
log.retention.hours=24
log.segment.bytes=67108864
PROPS
	kafka_log4j_yaml "$node/log/server.log" kafka.request.logger org.apache.kafka.controller state.change.logger >"$node/log4j2.yaml"
}

kafka_java() {
	local node="$1"
	shift
	# shellcheck disable=SC2086
	java $heap -Dlog4j2.configurationFile="$node/log4j2.yaml" -cp "$dir/kafka-libs/*" "$@"
}

# kafka_format ID formats broker ID's storage once, with the cluster's id.
kafka_format() {
	local node
	node="$(kafka_node_dir "$1")"
	if [ -e "$node/data/meta.properties" ]; then return 0; fi
	kafka_config "$1"
	kafka_java "$node" kafka.tools.StorageTool format -t "$(cat "$dir/kafka-cluster.id")" -c "$node/server.properties" \
		>"$node/log/format.log" 2>&1
}

# kafka_format_all formats every broker not formatted yet, in parallel: each
# is a JVM start.
kafka_format_all() {
	# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding,
	# not starting with '-': kafka-storage would read "-t -x..." as a flag
	# with no value (it happened once in 64 starts, as Kafka's own
	# random-uuid knows and avoids). A file from such a start is replaced.
	local id
	id="$(cat "$dir/kafka-cluster.id" 2>/dev/null || true)"
	while [ -z "$id" ] || [ "${id:0:1}" = "-" ]; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
	done
	printf '%s' "$id" >"$dir/kafka-cluster.id"
	# Waits on these pids only: the servers started so far are children too.
	local i pids=()
	for i in "${!kafka_ports[@]}"; do
		kafka_format $((i + 1)) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
}

kafka_up() {
	local id="$1" node
	node="$(kafka_node_dir "$id")"
	if alive "$node/pid"; then return 0; fi
	port_free "${kafka_ports[id - 1]}" "kafka-$id"
	port_free "${controller_ports[id - 1]}" "kafka-$id controller"
	kafka_config "$id"
	kafka_format "$id" || { cat "$node/log/format.log" >&2; die "formatting kafka-$id storage failed"; }
	: >"$node/log/server.log"
	log "starting kafka-$id on 127.0.0.1:${kafka_ports[id - 1]}"
	start_java "$node/pid" "$node/log/stdout.log" -Dlog4j2.configurationFile="$node/log4j2.yaml" \
		-cp "$dir/kafka-libs/*" kafka.Kafka "$node/server.properties"
}

kafka_ready() {
	local id="$1" node
	node="$(kafka_node_dir "$id")"
	listening "${kafka_ports[id - 1]}" && grep -q "Kafka Server started" "$node/log/server.log" 2>/dev/null
}

# --- ClickHouse --------------------------------------------------------------

ch_node_dir() { echo "$dir/clickhouse-$1"; }

ch_config() {
	local id="$1" node i
	node="$(ch_node_dir "$id")"
	mkdir -p "$node"
	local replicas=""
	for i in "${!ch_ports[@]}"; do
		replicas="$replicas
                <replica><host>127.0.0.1</host><port>${ch_ports[i]}</port></replica>"
	done
	clickhouse_config_xml cluster.sh "$node" "${ch_http_ports[id - 1]}" "${ch_ports[id - 1]}" 134217728 "\
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>${ch_interserver_ports[id - 1]}</interserver_http_port>

    <!-- One shard of every replica: each holds all the rows. -->
    <remote_servers>
        <$name>
            <shard>
                <internal_replication>true</internal_replication>$replicas
            </shard>
        </$name>
    </remote_servers>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$zk_port</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <macros>
        <shard>01</shard>
        <replica>replica-$id</replica>
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>" >"$node/config.xml"
	clickhouse_users_xml cluster.sh 2000000000 in_order "" >"$node/users.xml"
}

ch_up() {
	local id="$1" node bin
	node="$(ch_node_dir "$id")"
	if alive "$node/pid"; then return 0; fi
	port_free "${ch_ports[id - 1]}" "clickhouse-$id"
	port_free "${ch_http_ports[id - 1]}" "clickhouse-$id http"
	port_free "${ch_interserver_ports[id - 1]}" "clickhouse-$id interserver"
	clickhouse_install
	bin="$(clickhouse_bin)"
	ch_config "$id"
	rm -f "$node/pid"
	log "starting clickhouse-$id on 127.0.0.1:${ch_ports[id - 1]}"
	setsid "$bin" --config-file="$node/config.xml" --pid-file="$node/pid" >"$node/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$node/pid"
}

ch_ready() {
	timeout 5 clickhouse-client --host 127.0.0.1 --port "${ch_ports[$1 - 1]}" -q "SELECT 1" >/dev/null 2>&1
}

# --- the whole cluster -------------------------------------------------------

members() {
	echo zookeeper
	local i
	for i in "${!ch_ports[@]}"; do echo "clickhouse-$((i + 1))"; done
	for i in "${!kafka_ports[@]}"; do echo "kafka-$((i + 1))"; done
}

pidfile_of() { echo "$dir/$1/pid"; }

# ready MEMBER succeeds when MEMBER answers; it fails the whole wait at once
# when MEMBER's process has died.
member_ready() {
	local m="$1"
	alive "$(pidfile_of "$m")" || { log "$m exited while starting (see $dir/$m/log)"; exit 1; }
	case "$m" in
	zookeeper) zk_ready ;;
	clickhouse-*) ch_ready "${m#clickhouse-}" ;;
	kafka-*) kafka_ready "${m#kafka-}" ;;
	esac
}

up() {
	mkdir -p "$dir"
	local i m
	zk_up
	wait_until "zookeeper on 127.0.0.1:$zk_port" "$wait_seconds" member_ready zookeeper ||
		die "zookeeper did not become ready within ${wait_seconds}s"
	fetch_jars kafka "$here/kafka/pom.xml"
	for i in "${!ch_ports[@]}"; do ch_up $((i + 1)); done
	# Every broker is a KRaft voter: none is ready before a quorum runs, so
	# all start before any wait.
	kafka_format_all
	for i in "${!kafka_ports[@]}"; do kafka_up $((i + 1)); done
	for m in $(members); do
		wait_until "$m" "$wait_seconds" member_ready "$m" || {
			tail -n 30 "$dir/$m/log/"*.log >&2 || true
			die "$m did not become ready within ${wait_seconds}s"
		}
	done
	log "cluster ready: kafka $(brokers), clickhouse $(clickhouse_addrs) (cluster $name), zookeeper 127.0.0.1:$zk_port"
}

down() {
	local m
	# In parallel: a KRaft broker's controlled shutdown needs the quorum that
	# stopping the others one by one would take away.
	local pids=() p
	for m in $(members | grep '^kafka-'); do
		stop_pidfile "$m" "$(pidfile_of "$m")" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for m in $(members | grep -v '^kafka-' | grep -v '^zookeeper$'); do stop_pidfile "$m" "$(pidfile_of "$m")"; done
	stop_pidfile zookeeper "$(pidfile_of zookeeper)"
}

status() {
	local m state=0
	for m in $(members); do
		if alive "$(pidfile_of "$m")"; then echo "$m running (pid $(cat "$(pidfile_of "$m")"))"; else
			echo "$m stopped"
			state=1
		fi
	done
	return $state
}

brokers() {
	local out="" p
	for p in "${kafka_ports[@]}"; do out="${out:+$out,}127.0.0.1:$p"; done
	echo "$out"
}

clickhouse_addrs() {
	local out="" p
	for p in "${ch_ports[@]}"; do out="${out:+$out,}127.0.0.1:$p"; done
	echo "$out"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env)
	echo "DOMINATION_KAFKA_BROKERS=$(brokers)"
	echo "DOMINATION_CLICKHOUSE_ADDR=$(clickhouse_addrs)"
	echo "DOMINATION_CLICKHOUSE_CLUSTER=$name"
	;;
*) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
