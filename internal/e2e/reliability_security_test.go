//go:build reliability

package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/verify"
)

// metricWithToken sums a metric's samples on the worker's /metrics, read
// with the metrics token.
func (w *secureWorker) metricWithToken(t *testing.T, prefix string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.base()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+secPromToken)
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer res.Body.Close()
	return sumMetric(res.Body, prefix)
}

// Scenario tls-sasl-pipeline: ratings produced over SASL_SSL (SCRAM-SHA-512)
// to a worker reading and writing over SASL_SSL, SIGKILLed once mid-run and
// restarted, into ClickHouse over its secure port with a password, the
// Kafka engine consuming over SASL_SSL: every rating lands once, and no
// secret appears in any log.
func TestReliabilityTLSSASLPipelineLosesAndDuplicatesNothing(t *testing.T) {
	const n, seed = 20000, 4242
	s := startSecured(t)
	e := s.env()
	s.ok(e, viaSASL, "migrate", "up", "--clickhouse-kafka-brokers", s.kafkaSASL)
	e.migratedUp = false

	w := s.startWorker(e, true)
	done := make(chan result, 1)
	go func() {
		done <- s.run(e, viaSASL, s.environ(e), "produce", "ratings", "--count", strconv.Itoa(n), "--seed", strconv.Itoa(seed), "--rate", "2000")
	}()
	testenv.WaitFor(t, "the worker to consume a third of the ratings", 2*time.Minute, func() bool {
		return w.metricWithToken(t, `domination_consumed_total{agent="shadow"}`) >= n/3
	})
	_ = w.stop(syscall.SIGKILL)
	noSecretIn(t, "the killed worker's log", w.logs.String(), secretsOf()...)
	w = s.startWorker(e, true)
	if r := <-done; r.code != 0 || !strings.Contains(r.stdout, "acknowledged "+strconv.Itoa(n)) {
		t.Fatalf("produce over SASL_SSL: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	v := s.run(e, viaSASL, s.environ(e), "verify", "ratings", "--seed", strconv.Itoa(seed), "--count", strconv.Itoa(n), "--wait", "3m", "--format", "json")
	var rep verify.Report
	if err := json.Unmarshal([]byte(v.stdout), &rep); err != nil {
		t.Fatalf("verify --format json over TLS: exit %d, %v\n%s\n%s", v.code, err, v.stdout, v.stderr)
	}
	printScenario(t, "tls-sasl-pipeline", rep)
	if rep.Produced != n || rep.Landed != n {
		t.Errorf("produced %d, landed %d; want %d of each", rep.Produced, rep.Landed, n)
	}
	_ = w.stop(syscall.SIGTERM)
	noSecretIn(t, "the worker's debug log", w.logs.String(), secretsOf()...)
}
