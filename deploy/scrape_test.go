package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"
)

// service returns the address of a service from the environment (as the
// main module's tests read it), failing when it does not answer.
func service(t *testing.T, key, def, what string) string {
	t.Helper()
	addr := os.Getenv(key)
	if addr == "" {
		addr = def
	}
	c, err := net.DialTimeout("tcp", strings.Split(addr, ",")[0], 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): start it with `make up`", what, addr, err)
	}
	_ = c.Close()
	return addr
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// baseEnviron is what every child process gets besides the chart's
// variables: nothing of the caller's DOMINATION_* environment leaks in.
func baseEnviron() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

// runBinary runs the binary with args and environ and fails t unless it
// exits 0 within a minute or two.
func runBinary(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(baseEnviron(), environ...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("domination %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// exported returns the sample names a /metrics page holds, as PromQL sees
// them (a histogram is its _bucket, _sum and _count series), with the sum of
// each name's samples.
func exported(body []byte) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				out[name+"_bucket"] += 0
				out[name+"_sum"] += m.GetHistogram().GetSampleSum()
				out[name+"_count"] += float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_SUMMARY:
				out[name] += 0
				out[name+"_sum"] += m.GetSummary().GetSampleSum()
				out[name+"_count"] += float64(m.GetSummary().GetSampleCount())
			case dto.MetricType_COUNTER:
				out[name] += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] += m.GetGauge().GetValue()
			default:
				out[name] += m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

func TestExportedReadsNamesAsPromQLSeesThem(t *testing.T) {
	page := `# TYPE a_total counter
a_total{agent="x"} 2
a_total{agent="y"} 3
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 5
h_count 2
# TYPE g gauge
`
	got, err := exported([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a_total": 5, "h_bucket": 0, "h_sum": 5, "h_count": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exported = %v, want %v (a family without samples is not exported)", got, want)
	}
}

// A worker configured by the chart, as a pod would run it, exports every
// metric that an alert rule or a dashboard panel names, once it has seen
// ratings, a bad rating and visits. The check reaches the worker as the
// kubelet and Prometheus would: through the chart's probe paths, and through
// the ServiceMonitor's path with the metrics token of its Secret, which the
// worker must demand.
func TestEveryMetricNamedByRulesAndDashboardIsExported(t *testing.T) {
	refs := append(ruleReferences(t), dashboardReferences(t)...)
	brokers := service(t, "DOMINATION_TEST_KAFKA_BROKERS", "127.0.0.1:9092", "Kafka")
	chAddr := service(t, "DOMINATION_TEST_CLICKHOUSE_ADDR", "127.0.0.1:9000", "ClickHouse")

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := "deploy_" + hex.EncodeToString(rnd[:])
	topics := map[string]string{
		"ratings": base + "-dominate", "shadow": base + "-shadow", "ratingsDeadLetter": base + "-dominate-dlq",
		"visits": base + "-visits", "visitsDeadLetter": base + "-visits-dlq", "activeVisitors": base + "-active-visitors",
		"repartition": base + "-repartition", "shadowDeadLetter": base + "-shadow-dlq",
		"activeVisitorsDeadLetter": base + "-active-visitors-dlq",
	}
	port := freePort(t)
	sets := []string{
		"kafka.brokers=" + brokers, "clickhouse.addr=" + chAddr, "clickhouse.database=" + base,
		"consumerGroups.shadow=" + base + "-shadow", "consumerGroups.visits=" + base + "-visits",
		"consumerGroups.clickhouseShadow=" + base + "-ch-shadow",
		"consumerGroups.clickhouseActiveVisitors=" + base + "-ch-av", "guard.group=" + base + "-guard",
		"worker.webPort=" + strconv.Itoa(port), "worker.window=1s", "worker.grace=1s", "worker.logFormat=text",
		"serviceMonitor.enabled=true", "web.metricsToken=" + hex.EncodeToString(rnd[:]) + "-metrics-token",
	}
	for k, v := range topics {
		sets = append(sets, "topics."+k+"="+v)
	}
	var args []string
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	rel := render(t, args...)
	job, dep := rel.one(t, "Job").container(t), rel.one(t, "Deployment").container(t)
	jobEnv, workerEnv := rel.environ(t, job), rel.environ(t, dep)

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		down := exec.CommandContext(ctx, binary, "migrate", "down")
		down.Env = append(baseEnviron(), jobEnv...)
		if out, err := down.CombinedOutput(); err != nil {
			t.Logf("migrate down: %v\n%s", err, out)
		}
		if conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}}); err == nil {
			_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+base)
			_ = conn.Close()
		}
		// The guard's audit group names its topics.
		names := []string{base + "-guard", base + "-guard-leader"}
		for _, n := range topics {
			names = append(names, n)
		}
		c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...)}
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
	})

	runBinary(t, jobEnv, job.Args...)

	portOf := func(name string) int {
		for _, p := range dep.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		t.Fatalf("worker container has no port named %q", name)
		return 0
	}
	sm := rel.one(t, "ServiceMonitor")
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor has %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	url := func(port, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", portOf(port), path) }
	live := url(dep.LivenessProbe.HTTPGet.Port, dep.LivenessProbe.HTTPGet.Path)
	ready := url(dep.ReadinessProbe.HTTPGet.Port, dep.ReadinessProbe.HTTPGet.Path)
	metrics := url("http", sm.Spec.Endpoints[0].Path)
	// Prometheus scrapes with the token the ServiceMonitor names.
	auth := sm.Spec.Endpoints[0].Authorization
	if auth == nil {
		t.Fatal("with web.metricsToken the ServiceMonitor sends no token")
	}
	token, ok := rel.secretValue(t, auth.Credentials.Name, auth.Credentials.Key)
	if !ok {
		t.Fatalf("the ServiceMonitor's token %s/%s is in no Secret of the release", auth.Credentials.Name, auth.Credentials.Key)
	}
	scrape := func(bearer string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, metrics, nil)
		if err != nil {
			return nil, err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return http.DefaultClient.Do(req)
	}

	w := exec.Command(binary, dep.Args...)
	w.Env = append(baseEnviron(), workerEnv...)
	var logs syncBuffer
	w.Stdout, w.Stderr = &logs, &logs
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = w.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	status := func(u string) int {
		res, err := http.Get(u)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, "the worker's liveness probe "+live, 30*time.Second, func() bool { return status(live) == http.StatusOK })

	const ratings, visits = 2000, 500
	runBinary(t, workerEnv, "produce", "ratings", "--count", strconv.Itoa(ratings), "--seed", "7")
	runBinary(t, workerEnv, "produce", "ratings", "--count", "1", "--min", "101", "--max", "101", "--seed", "8")
	runBinary(t, workerEnv, "produce", "visits", "--account-id", "1", "--account-id", "2", "--store-id", "uk",
		"--store-id", "us", "--frequency", "inf", "--max-messages", strconv.Itoa(visits), "--seed", "9")

	// Labelled series appear with their first observation, and the
	// ClickHouse stages are measured once their tables hold rows: wait until
	// the traffic is committed and every name is there, or report which are
	// not.
	var have map[string]float64
	var missing []string
	done := func() bool {
		res, err := scrape(token)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("scrape %s with the ServiceMonitor's token: %s", metrics, res.Status)
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(res.Body); err != nil {
			return false
		}
		if have, err = exported(body.Bytes()); err != nil {
			t.Fatalf("parse %s: %v", metrics, err)
		}
		missing = missing[:0]
		for _, r := range refs {
			if _, ok := have[r.metric]; !ok && !synthesized[r.metric] {
				missing = append(missing, r.metric+" ("+r.where+")")
			}
		}
		return len(missing) == 0 && have["domination_committed_total"] >= ratings+1+visits &&
			have["domination_dead_lettered_total"] >= 1 && status(ready) == http.StatusOK
	}
	deadline := time.Now().Add(3 * time.Minute)
	for pause := 10 * time.Millisecond; !done(); pause = min(2*pause, 500*time.Millisecond) {
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("after 3 minutes of traffic (committed %v, dead-lettered %v, %s answers %d), %d names are not on %s:\n  %s",
				have["domination_committed_total"], have["domination_dead_lettered_total"], ready, status(ready),
				len(missing), metrics, strings.Join(missing, "\n  "))
		}
		time.Sleep(pause)
	}
	t.Logf("%d references to %d metrics, all exported", len(refs), countNames(refs))
	if res, err := scrape(""); err != nil {
		t.Errorf("scrape %s without a token: %v", metrics, err)
	} else {
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("scrape %s without a token: %s, want 401: the chart's metrics token is not enforced", metrics, res.Status)
		}
	}

	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	grace := time.Duration(rel.one(t, "Deployment").Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("worker stopped by SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(grace):
		_ = w.Process.Kill()
		<-exited
		t.Errorf("worker still running %s after SIGTERM: the kubelet would kill it mid-drain", grace)
	}
}

// syncBuffer is a bytes.Buffer safe for a child's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func countNames(refs []reference) int {
	names := map[string]bool{}
	for _, r := range refs {
		names[r.metric] = true
	}
	return len(names)
}

// waitFor polls ok until it holds, failing t after within.
func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for pause := 5 * time.Millisecond; !ok(); pause = min(2*pause, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pause)
	}
}
