#!/usr/bin/env bash
# test-deps.sh — install the tools the test suite calls besides Go:
# docker-compose (validates docker-compose.yml; no engine needed),
# chdb-core (a current ClickHouse engine for internal/compat) and headless
# chromium (the dashboard's browser test in internal/e2e).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=services/lib.sh
source "$here/services/lib.sh"
if ! command -v docker-compose >/dev/null 2>&1 && ! (command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1); then
	log "installing docker-compose to validate docker-compose.yml"
	apt_install docker-compose
fi
bash "$here/chdb/install.sh"
if ! command -v chromium >/dev/null 2>&1; then
	log "installing chromium for the dashboard's browser test"
	apt_install chromium
fi
