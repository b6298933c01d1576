#!/usr/bin/env bash
# install.sh — installs chdb-core, the current ClickHouse engine in a Python
# package, into a virtual environment in .tools/chdb (git-ignored), for the
# compatibility test in internal/compat. Does nothing when the pinned release
# is already there. DOMINATION_CHDB_VENV moves the environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../services/lib.sh
source "$here/../services/lib.sh"

version="26.9.0" # chdb-core's release; its engine is ClickHouse 26.9
venv="${DOMINATION_CHDB_VENV:-$repo_root/.tools/chdb}"

installed() {
	[ -x "$venv/bin/python" ] &&
		[ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("chdb-core"))' 2>/dev/null)" = "$version" ] &&
		"$venv/bin/python" -c 'from chdb import session' 2>/dev/null
}

if installed; then
	exit 0
fi
command -v python3 >/dev/null || apt_install python3
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
fi
log "installing chdb-core $version into $venv"
# Without its dependencies (pandas, pyarrow, numpy: 300 MB that run.py never
# imports), the install takes seconds instead of a minute.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "chdb-core==$version" >&2 ||
	die "pip install chdb-core==$version failed"
installed || die "chdb-core $version is not importable from $venv after installing it"
