#!/usr/bin/env bash
# down.sh — stop what up.sh started (the same mode and TOPOLOGY rules apply).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
services down
