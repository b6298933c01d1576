#!/usr/bin/env bash
# run.sh — what `make bench` runs: start the services, build domination and
# the contenders, set up Faust's virtualenv, then run the harness.
# Settings: BENCH_* environment variables (see README.md).
set -euo pipefail
bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench")"
GO="${GO:-go}"
PYTHON="${PYTHON:-python3}"
say() { echo "$(date +%H:%M:%S) bench: $*" >&2; }

cd "$root"
# BENCH_TOPOLOGY=single (the default) or cluster: the harness runs against
# the services of that topology only (see README.md).
export BENCH_TOPOLOGY="${BENCH_TOPOLOGY:-single}"
TOPOLOGY="$BENCH_TOPOLOGY" bash scripts/services/up.sh
say "building bin/domination and the contenders"
"$GO" build -o bin/domination ./cmd/domination
(cd "$bench" && "$GO" build -o bin/harness ./harness && "$GO" build -o bin/passthrough ./peers/passthrough)
(cd "$bench/peers/goka" && "$GO" build -o ../../bin/goka-shadow .)
if [ "${BENCH_PROFILE:-}" = 1 ]; then
	# A variant of the product binary that profiles itself (see
	# profile/zz_pprof.go); the product's source is untouched.
	overlay="$bench/bin/pprof-overlay.json"
	printf '{"Replace":{"%s":"%s"}}\n' "$root/cmd/domination/zz_pprof.go" "$bench/profile/zz_pprof.go" >"$overlay"
	"$GO" build -tags benchpprof -overlay "$overlay" -o "$bench/bin/domination-pprof" ./cmd/domination
fi

# Faust lives in a virtualenv of its own, rebuilt when its requirements change.
venv="$bench/.venv"
req="$bench/peers/faust/requirements.txt"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	say "setting up Faust's virtualenv in bench/.venv"
	rm -rf "$venv"
	"$PYTHON" -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
	echo "$want" >"$stamp"
fi

cd "$bench"
exec ./bin/harness
