#!/usr/bin/env bash
# deploy-check.sh — check deploy/: the Helm chart, the Grafana dashboard and
# the Prometheus rules.
#
#   1. helm lint and helm template, with every values file in the chart's ci/;
#   2. every rendered manifest validated offline against the OpenAPI schemas
#      of Kubernetes $KUBE_VERSION (PyPI's kubernetes-validate, strict);
#   3. promtool check rules and promtool test rules;
#   4. the Go tests of deploy/ (a separate module): the chart sets exactly the
#      variables the binary reads, and a worker configured by the chart
#      exports every metric a rule or a panel names (needs `make up`).
#
# The tools are built from the Go module proxy and PyPI at pinned versions
# into .tools/ (git-ignored); a second run reuses them, and a fresh clone
# reuses Go's build cache. DEPLOY_CHECK_STEPS=lint,validate,rules,go picks
# steps.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

HELM_VERSION=v3.22.0
# The Kubernetes release helm v3.22 is built against (k8s.io/client-go
# v0.37): helm template's default cluster version, and the schemas'.
KUBE_VERSION=1.37.0
PROMETHEUS_VERSION=v0.316.0 # promtool of Prometheus 3.16
KUBERNETES_VALIDATE_VERSION=1.37.0

tools="$root/.tools"
GO="${GO:-go}"
steps=",${DEPLOY_CHECK_STEPS:-lint,validate,rules,go},"
chart="deploy/helm/domination"

log() { printf '%s [deploy-check] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
step() { [[ "$steps" == *",$1,"* ]]; }

# timed NAME CMD... runs CMD and logs how long it took.
timed() {
	local name="$1" start=$SECONDS
	shift
	"$@"
	log "$name: $((SECONDS - start)) s"
}

helm="$tools/helm-$HELM_VERSION/helm"
promtool="$tools/promtool-$PROMETHEUS_VERSION/promtool"
venv="$tools/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"

install_helm() {
	local minor="${KUBE_VERSION#*.}"
	minor="${minor%%.*}"
	# The ldflags of helm's own release build: without them helm reports
	# version "v3.22" and assumes a Kubernetes 1.20 cluster.
	GOBIN="$(dirname "$helm")" "$GO" install -trimpath -ldflags "-s -w \
		-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# Without the service discovery plugins (remove_all_sd), which promtool
# needs only for `check service-discovery` and which are most of its build
# (the cloud SDKs). No other flags: a change of flags rebuilds every package.
install_promtool() {
	GOBIN="$(dirname "$promtool")" "$GO" install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
}

install_kubernetes_validate() {
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
}

if step lint || step validate || step go; then
	helm_ok() { [ -x "$helm" ] && [ "$("$helm" version --template '{{.Version}}')" = "$HELM_VERSION" ]; }
	helm_ok || timed "build helm $HELM_VERSION" install_helm
	helm_ok || die "$helm is not helm $HELM_VERSION"
fi
if step rules; then
	[ -x "$promtool" ] || timed "build promtool $PROMETHEUS_VERSION" install_promtool
fi
if step validate; then
	[ -x "$venv/bin/kubernetes-validate" ] || timed "install kubernetes-validate $KUBERNETES_VALIDATE_VERSION" install_kubernetes_validate
fi

# The values files to lint and render: the defaults, then each of ci/.
values_sets=("")
for f in "$chart"/ci/*.yaml; do values_sets+=("$f"); done

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT

if step lint; then
	for v in "${values_sets[@]}"; do
		log "helm lint ${v:-(defaults)}"
		"$helm" lint --strict --quiet "$chart" ${v:+-f "$v"}
	done
fi

if step validate || step lint; then
	for v in "${values_sets[@]}"; do
		out="$rendered/$(basename "${v:-defaults.yaml}")"
		"$helm" template domination "$chart" --namespace analytics ${v:+-f "$v"} >"$out"
		log "helm template ${v:-(defaults)}: $(grep -c '^kind: ' "$out") objects"
	done
fi

if step validate; then
	# The Prometheus Operator's ServiceMonitor is not among Kubernetes'
	# schemas (kubernetes-validate only warns that it has none): it is left
	# out here, and the Go tests read it.
	cores=()
	for out in "$rendered"/*.yaml; do
		python3 - "$out" "$out.core" <<-'EOF'
			import sys
			docs = open(sys.argv[1]).read().split("\n---")
			keep = [d for d in docs if "\nkind: ServiceMonitor\n" not in "\n" + d + "\n"]
			open(sys.argv[2], "w").write("\n---".join(keep))
		EOF
		cores+=("$out.core")
	done
	log "kubernetes-validate --strict against Kubernetes $KUBE_VERSION: ${#cores[@]} renderings"
	"$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "${cores[@]}"
fi

if step rules; then
	log "promtool check rules"
	"$promtool" check rules deploy/prometheus/*-alerts.yaml
	log "promtool test rules"
	"$promtool" test rules deploy/prometheus/*.test.yaml
fi

if step go; then
	log "go test ./deploy/... (a worker against the services of \`make up\`)"
	(cd deploy && HELM="$helm" "$GO" test -count=1 -timeout 15m ./...)
fi
log "ok"
