package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const chartDir = "helm/domination"

// binary is the domination binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "domination-deploy")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "domination")
	build := exec.Command("go", "build", "-o", binary, "./cmd/domination")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build domination:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helm returns the helm binary: $HELM, as scripts/deploy-check.sh sets it.
func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		t.Fatal("HELM is not set: run `make deploy-check`, which builds helm and sets it")
	}
	return h
}

// manifest is the part of a rendered Kubernetes object the checks read.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Ports []struct {
			Name string `yaml:"name"`
		} `yaml:"ports"`
		Endpoints []struct {
			Port          string `yaml:"port"`
			Path          string `yaml:"path"`
			Scheme        string `yaml:"scheme"`
			Authorization *struct {
				Type        string `yaml:"type"`
				Credentials struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"credentials"`
			} `yaml:"authorization"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Env   []envVar `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	ReadinessProbe probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		ResourceFieldRef *struct {
			Resource string `yaml:"resource"`
		} `yaml:"resourceFieldRef"`
	} `yaml:"valueFrom"`
}

// release is a rendered chart.
type release []manifest

// render runs helm template on the chart with the given helm arguments.
func render(t *testing.T, args ...string) release {
	t.Helper()
	cmd := exec.Command(helm(t), append([]string{"template", "domination", chartDir, "--namespace", "analytics"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var rel release
	dec := yaml.NewDecoder(&out)
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if m.Kind != "" {
			rel = append(rel, m)
		}
	}
	return rel
}

// one returns the only object of kind.
func (r release) one(t *testing.T, kind string) manifest {
	t.Helper()
	var found []manifest
	for _, m := range r {
		if m.Kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("rendered chart has %d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// container returns the only container of a workload.
func (m manifest) container(t *testing.T) container {
	t.Helper()
	cs := m.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s %s has %d containers, want 1", m.Kind, m.Metadata.Name, len(cs))
	}
	return cs[0]
}

// environ resolves a container's environment as the kubelet would: values,
// keys of the release's Secrets and the container's resource limits.
func (r release) environ(t *testing.T, c container) []string {
	t.Helper()
	var out []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out = append(out, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := r.secretValue(t, ref.Name, ref.Key)
			if !ok {
				t.Fatalf("%s: Secret %s has no key %s in the release", e.Name, ref.Name, ref.Key)
			}
			out = append(out, e.Name+"="+v)
		case e.ValueFrom.ResourceFieldRef != nil:
			res := strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits.")
			q, ok := c.Resources.Limits[res]
			if !ok {
				t.Fatalf("%s: container %s has no limit %s", e.Name, c.Name, res)
			}
			out = append(out, e.Name+"="+strconv.FormatInt(quantityBytes(t, q), 10))
		default:
			t.Fatalf("%s: no way to resolve its valueFrom", e.Name)
		}
	}
	return out
}

func (r release) secretValue(t *testing.T, name, key string) (string, bool) {
	t.Helper()
	for _, m := range r {
		if m.Kind != "Secret" || m.Metadata.Name != name {
			continue
		}
		enc, ok := m.Data[key]
		if !ok {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatalf("Secret %s key %s: %v", name, key, err)
		}
		return string(b), true
	}
	return "", false
}

var quantity = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi)?$`)

// quantityBytes reads a Kubernetes memory quantity in bytes, the binary
// suffixes only (what the chart uses).
func quantityBytes(t *testing.T, q string) int64 {
	t.Helper()
	m := quantity.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("memory quantity %q: only plain bytes, Ki, Mi and Gi are read here", q)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << map[string]uint{"": 0, "Ki": 10, "Mi": 20, "Gi": 30}[m[2]]
}

// envNames returns the DOMINATION_* names among a container's variables.
func envNames(c container) map[string]bool {
	names := map[string]bool{}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "DOMINATION_") {
			names[e.Name] = true
		}
	}
	return names
}

var helpEnv = regexp.MustCompile(`\$(DOMINATION_[A-Z0-9_]+)`)

// accepted returns the variables the binary reads for a command: the global
// flags' and the command's own, as its --help lists them.
func accepted(t *testing.T, command ...string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, args := range [][]string{{"--help"}, append(command, "--help")} {
		cmd := exec.Command(binary, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("domination %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, m := range helpEnv.FindAllStringSubmatch(string(out), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("domination %s --help lists %d variables; is the help format still `[$DOMINATION_X]`?", strings.Join(command, " "), len(names))
	}
	return names
}

// notMapped are the variables the chart leaves alone on purpose.
var notMapped = map[string]string{
	"DOMINATION_WEB_HOST":           "a pod listens on all its interfaces",
	"DOMINATION_WEB_TOKENS_FILE":    "the tokens come from the Secret as DOMINATION_WEB_TOKENS",
	"DOMINATION_METRICS_TOKEN_FILE": "the metrics token comes from the Secret as DOMINATION_METRICS_TOKEN",
}

// The chart sets only variables the binary reads (a misspelt one would be
// ignored without a word), and with every optional part switched on it maps
// every variable the worker and `migrate up` read.
func TestChartMapsEveryVariableTheBinaryReads(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		command []string
	}{
		{"Deployment", []string{"worker"}},
		{"Job", []string{"migrate", "up"}},
	} {
		reads := accepted(t, tc.command...)
		for _, valuesFile := range []string{"", "ci/full-values.yaml", "ci/existing-secret-values.yaml"} {
			args := []string{}
			if valuesFile != "" {
				args = append(args, "-f", filepath.Join(chartDir, valuesFile))
			}
			c := render(t, args...).one(t, tc.kind).container(t)
			set := envNames(c)
			for _, n := range sortedKeys(set) {
				if !reads[n] {
					t.Errorf("%s (values %q) sets %s, which `domination %s` does not read", tc.kind, valuesFile, n, strings.Join(tc.command, " "))
				}
			}
			if valuesFile != "ci/full-values.yaml" {
				continue
			}
			for _, n := range sortedKeys(reads) {
				if _, skip := notMapped[n]; !set[n] && !skip {
					t.Errorf("no value of the chart sets %s for `domination %s` (%s): give it a value in %s (values.yaml, the %s template, README.md and ci/full-values.yaml), or say in notMapped why not", n, strings.Join(tc.command, " "), tc.kind, chartDir, tc.kind)
				}
			}
		}
	}
}

// Passwords reach the pods through a Secret: the chart's own, or the one
// named by secrets.existingSecret, which the chart then does not create.
func TestChartReadsPasswordsFromSecrets(t *testing.T) {
	own := render(t, "--set", "clickhouse.password=ch-pw", "--set", "kafka.sasl.mechanism=PLAIN",
		"--set", "kafka.sasl.username=u", "--set", "kafka.sasl.password=kafka-pw")
	for _, kind := range []string{"Deployment", "Job"} {
		env := strings.Join(own.environ(t, own.one(t, kind).container(t)), "\n")
		for _, want := range []string{"DOMINATION_CLICKHOUSE_PASSWORD=ch-pw", "DOMINATION_KAFKA_SASL_PASSWORD=kafka-pw"} {
			if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
				t.Errorf("%s environment lacks %s:\n%s", kind, want, env)
			}
		}
		for _, e := range own.one(t, kind).container(t).Env {
			if strings.Contains(e.Value, "-pw") {
				t.Errorf("%s: %s holds a password in plain text", kind, e.Name)
			}
		}
	}

	existing := render(t, "-f", filepath.Join(chartDir, "ci/existing-secret-values.yaml"))
	for _, m := range existing {
		if m.Kind == "Secret" {
			t.Errorf("with an existing Secret the chart still creates Secret %s", m.Metadata.Name)
		}
	}
	for _, kind := range []string{"Deployment", "Job"} {
		refs := map[string]string{}
		for _, e := range existing.one(t, kind).container(t).Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			}
		}
		want := map[string]string{
			"DOMINATION_CLICKHOUSE_PASSWORD": "domination-passwords/password",
			"DOMINATION_KAFKA_SASL_PASSWORD": "domination-passwords/kafka-sasl-password",
		}
		if kind == "Deployment" {
			want["DOMINATION_WEB_TOKENS"] = "domination-passwords/web-tokens"
			want["DOMINATION_METRICS_TOKEN"] = "domination-passwords/metrics-token"
		}
		if fmt.Sprint(refs) != fmt.Sprint(want) {
			t.Errorf("%s reads secrets %v, want %v", kind, refs, want)
		}
	}
}

// The pod waits for its preStop sleep and the worker's whole drain deadline
// before the kubelet may kill it.
func TestChartGivesTheDrainItsDeadline(t *testing.T) {
	for _, tc := range []struct {
		timeout, sleep, grace int
	}{{30, 5, 40}, {120, 0, 125}} {
		rel := render(t, "--set", fmt.Sprintf("worker.shutdownTimeoutSeconds=%d", tc.timeout),
			"--set", fmt.Sprintf("worker.preStopSleepSeconds=%d", tc.sleep))
		d := rel.one(t, "Deployment")
		if got := d.Spec.Template.Spec.TerminationGracePeriodSeconds; got != tc.grace {
			t.Errorf("shutdown %ds, preStop %ds: terminationGracePeriodSeconds = %d, want %d", tc.timeout, tc.sleep, got, tc.grace)
		}
		env := strings.Join(rel.environ(t, d.container(t)), "\n")
		if want := fmt.Sprintf("DOMINATION_SHUTDOWN_TIMEOUT=%ds", tc.timeout); !strings.Contains(env, want) {
			t.Errorf("worker environment lacks %s", want)
		}
	}
}

// The chart's README documents every value: each leaf of values.yaml, or a
// key above it, is in the first column of its table, and the table names no
// value that does not exist.
func TestChartReadmeDocumentsEveryValue(t *testing.T) {
	var values map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	exists := map[string]bool{}
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		exists[prefix] = true
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			leaves = append(leaves, prefix)
			return
		}
		for k, child := range m {
			walk(strings.TrimPrefix(prefix+"."+k, "."), child)
		}
	}
	walk("", values)

	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(readme), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 4 || strings.TrimSpace(cols[1]) == "value" || strings.HasPrefix(strings.TrimSpace(cols[1]), "---") {
			continue
		}
		for _, m := range cell.FindAllStringSubmatch(cols[1], -1) {
			documented[m[1]] = true
			if !exists[m[1]] {
				t.Errorf("README.md documents %s, which values.yaml does not have", m[1])
			}
		}
	}
	for _, leaf := range leaves {
		ok := false
		for p := leaf; p != "" && !ok; p = p[:max(strings.LastIndex(p, "."), 0)] {
			ok = documented[p]
		}
		if !ok {
			t.Errorf("README.md does not document %s", leaf)
		}
	}
}

// The ServiceMonitor scrapes the chart's Service on its named port, over
// HTTPS when the worker serves TLS, with the metrics token from the Secret
// when there is one. (Kubernetes' schemas do not cover it.)
func TestServiceMonitorScrapesTheService(t *testing.T) {
	for _, tc := range []struct {
		values string
		scheme string
		token  string
	}{
		{"", "", ""},
		{"ci/full-values.yaml", "https", "domination/metrics-token"},
		{"ci/existing-secret-values.yaml", "", "domination-passwords/metrics-token"},
	} {
		args := []string{"--set", "serviceMonitor.enabled=true"}
		if tc.values != "" {
			args = append(args, "-f", filepath.Join(chartDir, tc.values))
		}
		rel := render(t, args...)
		sm, svc := rel.one(t, "ServiceMonitor"), rel.one(t, "Service")
		for k, v := range sm.Spec.Selector.MatchLabels {
			if svc.Metadata.Labels[k] != v {
				t.Errorf("%q: ServiceMonitor selects %s=%s, which Service %s lacks", tc.values, k, v, svc.Metadata.Name)
			}
		}
		if len(sm.Spec.Selector.MatchLabels) == 0 || len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("%q: ServiceMonitor has selector %v and %d endpoints", tc.values, sm.Spec.Selector.MatchLabels, len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		ports := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			ports[p.Name] = true
		}
		if !ports[ep.Port] || ep.Path != "/metrics" || ep.Scheme != tc.scheme {
			t.Errorf("%q: ServiceMonitor scrapes port %q path %q scheme %q; Service ports %v, want /metrics over %q", tc.values, ep.Port, ep.Path, ep.Scheme, ports, tc.scheme)
		}
		token := ""
		if a := ep.Authorization; a != nil {
			token = a.Credentials.Name + "/" + a.Credentials.Key
			if a.Type != "Bearer" {
				t.Errorf("%q: authorization type %q, want Bearer", tc.values, a.Type)
			}
		}
		if token != tc.token {
			t.Errorf("%q: ServiceMonitor sends token %q, want %q", tc.values, token, tc.token)
		}
		if tc.values != "ci/existing-secret-values.yaml" && token != "" {
			name, key, _ := strings.Cut(token, "/")
			if _, ok := rel.secretValue(t, name, key); !ok {
				t.Errorf("%q: the ServiceMonitor's token %s is in no Secret of the release", tc.values, token)
			}
		}
	}
}

// Both pods run as a non-root user on a read-only root filesystem with no
// capability, and the worker's memory request covers the measured peak.
func TestChartRunsNonRootOnAReadOnlyRoot(t *testing.T) {
	// The largest worker RSS of the benchmark runs (bench/README.md).
	const measuredPeakRSS = 132_000_000
	rel := render(t)
	for _, kind := range []string{"Deployment", "Job"} {
		m := rel.one(t, kind)
		pod, c := m.Spec.Template.Spec.SecurityContext, m.container(t)
		if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == 0 {
			t.Errorf("%s: pod security context %+v does not run as a non-root user", kind, pod)
		}
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: the root filesystem is writable", kind)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: privilege escalation is allowed", kind)
		}
		if strings.Join(sc.Capabilities.Drop, ",") != "ALL" {
			t.Errorf("%s: drops capabilities %v, want ALL", kind, sc.Capabilities.Drop)
		}
	}
	c := rel.one(t, "Deployment").container(t)
	req, limit := quantityBytes(t, c.Resources.Requests["memory"]), quantityBytes(t, c.Resources.Limits["memory"])
	if req < measuredPeakRSS || limit < req {
		t.Errorf("worker memory request %d and limit %d bytes: want request >= the measured peak %d, limit >= request", req, limit, measuredPeakRSS)
	}
}
