#!/usr/bin/env bash
# up.sh — start Kafka and ClickHouse for development and tests.
#
# With a Docker engine that answers, `docker compose up --wait`; otherwise the
# plain-process scripts beside this one (no Docker needed: Debian's
# clickhouse-server and Kafka jars from Maven Central).
# Set DOMINATION_SERVICES=process or =docker to choose.
#
# TOPOLOGY=single (the default) is one Kafka broker and one ClickHouse server;
# TOPOLOGY=cluster is three brokers, a ZooKeeper and two ClickHouse replicas
# (cluster.sh, or docker-compose.yml's "cluster" profile) on their own ports.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${DOMINATION_SERVICES:-auto}"
topology="${TOPOLOGY:-single}"
if [ "$mode" = auto ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=process; fi
fi
compose=(docker compose -f "$here/../../docker-compose.yml")
case "$mode/$topology" in
docker/single) exec "${compose[@]}" up --wait kafka clickhouse ;;
docker/cluster) exec "${compose[@]}" --profile cluster up --wait kafka-1 kafka-2 kafka-3 zookeeper clickhouse-1 clickhouse-2 ;;
process/single)
	bash "$here/clickhouse.sh" up
	bash "$here/kafka.sh" up
	;;
process/cluster) exec bash "$here/cluster.sh" up ;;
*/single | */cluster) echo "DOMINATION_SERVICES must be auto, docker or process" >&2; exit 2 ;;
*) echo "TOPOLOGY must be single or cluster" >&2; exit 2 ;;
esac
