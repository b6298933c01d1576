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
# shellcheck source=lib.sh
source "$here/lib.sh"
services up
