#!/usr/bin/env bash
# down.sh — stop what up.sh started (the same mode rules apply).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${DOMINATION_SERVICES:-auto}"
if [ "$mode" = auto ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=process; fi
fi
case "$mode" in
docker) exec docker compose -f "$here/../../docker-compose.yml" down ;;
process)
	bash "$here/kafka.sh" down
	bash "$here/clickhouse.sh" down
	;;
*) echo "DOMINATION_SERVICES must be auto, docker or process" >&2; exit 2 ;;
esac
