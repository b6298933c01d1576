#!/usr/bin/env bash
# down.sh — stop what up.sh started (the same mode and TOPOLOGY rules apply).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${DOMINATION_SERVICES:-auto}"
topology="${TOPOLOGY:-single}"
if [ "$mode" = auto ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=process; fi
fi
compose=(docker compose -f "$here/../../docker-compose.yml")
case "$mode/$topology" in
docker/single) exec "${compose[@]}" down ;;
docker/cluster) exec "${compose[@]}" --profile cluster stop kafka-1 kafka-2 kafka-3 zookeeper clickhouse-1 clickhouse-2 ;;
process/single)
	bash "$here/kafka.sh" down
	bash "$here/clickhouse.sh" down
	;;
process/cluster) exec bash "$here/cluster.sh" down ;;
*/single | */cluster) echo "DOMINATION_SERVICES must be auto, docker or process" >&2; exit 2 ;;
*) echo "TOPOLOGY must be single or cluster" >&2; exit 2 ;;
esac
