#!/usr/bin/env bash
# up.sh — start Kafka and ClickHouse for development and tests.
#
# With a Docker engine that answers, `docker compose up --wait kafka
# clickhouse`; otherwise the plain-process scripts beside this one (no Docker
# needed: Debian's clickhouse-server and Kafka jars from Maven Central).
# Set DOMINATION_SERVICES=process or =docker to choose.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${DOMINATION_SERVICES:-auto}"
if [ "$mode" = auto ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=process; fi
fi
case "$mode" in
docker) exec docker compose -f "$here/../../docker-compose.yml" up --wait kafka clickhouse ;;
process)
	bash "$here/clickhouse.sh" up
	bash "$here/kafka.sh" up
	;;
*) echo "DOMINATION_SERVICES must be auto, docker or process" >&2; exit 2 ;;
esac
