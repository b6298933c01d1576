//go:build reliability

package e2e

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
)

// Scenario 3: the Kafka broker stops for 30 s mid-run and comes back. The
// workers retry with backoff and resume by themselves; the producer rides
// out the outage too (see steadyRatings).
func TestReliabilityKafkaStoppedFor30sMidRunWorkersResumeByThemselves(t *testing.T) {
	k, e, workers := twoWorkersOnOwnKafka(t)
	committed := func() float64 { return shadowCommitted(workers) }
	const n = 100000
	acked := make(chan int, 1)
	go func() { acked <- e.steadyRatings(context.Background(), 20261203, n, 2000) }()
	testenv.WaitFor(t, "the workers to commit 15,000 ratings", 2*time.Minute, func() bool { return committed() >= 15000 })

	stopKafkaFor(t, k, workers, 30*time.Second)
	e.everyRatingLanded(t, "kafka-outage-30s", acked, n)
	for i, w := range workers {
		if !w.alive() {
			t.Errorf("worker %d is no longer running", i)
		}
		if logs := w.logs.String(); !strings.Contains(logs, "level=WARN") {
			t.Errorf("worker %d logged no warning about the outage", i)
		}
	}
}

// Scenario 4: ClickHouse stops for 30 s mid-run and comes back. The worker
// keeps running and keeps committing, /ready reports the outage and the
// recovery, and ingestion catches up by itself.
func TestReliabilityClickHouseStoppedFor30sMidRunIngestionCatchesUp(t *testing.T) {
	ch := startClickHouse(t)
	e := newEnvAt(t, testenv.KafkaBrokers(t), ch.addr)
	e.migrateUp()
	w := e.startWorker("--max-batch", "1000")
	testenv.WaitFor(t, "/ready to answer 200", time.Minute, func() bool { code, _ := w.readiness(); return code == http.StatusOK })
	const n = 120000
	begin := time.Now()
	wait := e.produceRatingsAsync(20261204, n, 2000)
	// Stop ClickHouse mid-run: the worker has committed part of the ratings
	// and ClickHouse has stored some of them.
	testenv.WaitFor(t, "the worker to commit 10,000 ratings", 2*time.Minute, func() bool {
		return w.metric(`domination_committed_total{agent="shadow"}`) >= 10000
	})
	testenv.WaitFor(t, "ratings in shadow", 2*time.Minute, func() bool { return e.count("SELECT count() FROM shadow FINAL") > 0 })
	t.Logf("%s into the run, ClickHouse holds %d ratings; stopping it", time.Since(begin).Round(time.Millisecond), e.count("SELECT count() FROM shadow FINAL"))

	stopped := time.Now()
	before := w.metric(`domination_committed_total{agent="shadow"}`)
	ch.stop()
	var body string
	testenv.WaitFor(t, "/ready to report the ClickHouse outage", 30*time.Second, func() bool {
		var code int
		code, body = w.readiness()
		return code == http.StatusServiceUnavailable
	})
	t.Logf("/ready during the outage: %s", strings.TrimSpace(body))
	if !strings.Contains(strings.ToLower(body), "clickhouse") {
		t.Errorf("/ready answers 503 without naming ClickHouse: %s", body)
	}
	time.Sleep(30*time.Second - time.Since(stopped))
	if !w.alive() {
		t.Fatalf("the worker exited during the ClickHouse outage:\n%s", w.logs.String())
	}
	during := w.metric(`domination_committed_total{agent="shadow"}`)
	if during <= before {
		t.Errorf("the worker committed nothing while ClickHouse was down (%.0f before, %.0f after)", before, during)
	}
	ch.up()
	restarted := time.Now()
	testenv.WaitFor(t, "/ready to recover", time.Minute, func() bool { code, _ := w.readiness(); return code == http.StatusOK })
	t.Logf("clickhouse was down for %s; the worker committed %.0f ratings meanwhile; /ready recovered %s after the restart",
		restarted.Sub(stopped).Round(time.Second), during-before, time.Since(restarted).Round(time.Millisecond))
	wait()
	rep := e.reconcileRatings(4 * time.Minute)
	printScenario(t, "clickhouse-outage-30s", rep)
	if rep.Landed != n {
		t.Errorf("landed %d, want %d", rep.Landed, n)
	}
	if !w.alive() {
		t.Error("the worker is no longer running")
	}
}

// withBrokers returns args with the --kafka-brokers value replaced.
func withBrokers(args []string, brokers string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "--kafka-brokers" && i+1 < len(out) {
			out[i+1] = brokers
		}
	}
	return out
}

// Scenario 10: a wrong Kafka SASL password and a wrong ClickHouse password
// give a clear error naming what failed, and no secret appears in any log
// line or answer; the right credentials work.
func TestReliabilityWrongPasswordsFailClearlyWithoutLeakingSecrets(t *testing.T) {
	const secret, wrongKafka, wrongCH = "sasl-secret-7Qm2", "wrong-kafka-pass-9f3a", "wrong-ch-pass-c41d"
	k, saslAddr := startKafka(t, secret)
	e := newEnvAt(t, []string{k.addr}, testenv.ClickHouseAddr(t))
	e.migrateUp()
	sasl := func(password string) []string {
		return append(e.environ(), "DOMINATION_KAFKA_SASL_MECHANISM=PLAIN", "DOMINATION_KAFKA_SASL_USERNAME=domination", "DOMINATION_KAFKA_SASL_PASSWORD="+password)
	}
	saslArgs := withBrokers(e.args(), saslAddr)

	r := runEnv(t, time.Minute, sasl(wrongKafka), append(saslArgs, "produce", "ratings", "--count", "10")...)
	refusedOneLine(t, "produce with a wrong SASL password", r, "sasl", "authentication")
	noSecretIn(t, "produce's output", r.stdout+r.stderr, wrongKafka, secret)

	r = runEnv(t, time.Minute, append(e.environ(), "DOMINATION_CLICKHOUSE_PASSWORD="+wrongCH), append(e.args(), "query", "shadow")...)
	refusedOneLine(t, "query with a wrong ClickHouse password", r, "clickhouse", e.chAddr, "password")
	noSecretIn(t, "query's output", r.stdout+r.stderr, wrongCH)
	r = runEnv(t, time.Minute, append(e.environ(), "DOMINATION_CLICKHOUSE_PASSWORD="+wrongCH), append(e.args(), "migrate", "up")...)
	refusedOneLine(t, "migrate up with a wrong ClickHouse password", r, "clickhouse", e.chAddr, "password")
	noSecretIn(t, "migrate's output", r.stdout+r.stderr, wrongCH)

	// A worker with a wrong SASL password keeps running, says why it cannot
	// work, and is not ready.
	bad := e.startWorkerEnv(sasl(wrongKafka), "--kafka-brokers", saslAddr)
	testenv.WaitFor(t, "the worker to log the SASL failure", time.Minute, func() bool {
		return strings.Contains(strings.ToLower(bad.logs.String()), "sasl authentication failed")
	})
	testenv.WaitFor(t, "/ready to answer 503", time.Minute, func() bool { code, _ := bad.readiness(); return code == http.StatusServiceUnavailable })
	_, body := bad.readiness()
	noSecretIn(t, "/ready", body, wrongKafka, secret)
	_ = bad.stop(syscall.SIGTERM)
	noSecretIn(t, "the worker's log", bad.logs.String(), wrongKafka, secret)

	// A worker with a wrong ClickHouse password serves Kafka but is not
	// ready, and /ready names ClickHouse.
	badCH := e.startWorkerEnv(append(e.environ(), "DOMINATION_CLICKHOUSE_PASSWORD="+wrongCH))
	testenv.WaitFor(t, "/ready to name ClickHouse", time.Minute, func() bool {
		code, body := badCH.readiness()
		return code == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(body), "clickhouse")
	})
	_, body = badCH.readiness()
	t.Logf("/ready with a wrong ClickHouse password: %s", strings.TrimSpace(body))
	noSecretIn(t, "/ready", body, wrongCH)
	_ = badCH.stop(syscall.SIGTERM)
	noSecretIn(t, "the worker's log", badCH.logs.String(), wrongCH)

	// The right SASL password works end to end.
	good := e.startWorkerEnv(sasl(secret), "--kafka-brokers", saslAddr)
	r = runEnv(t, time.Minute, sasl(secret), append(saslArgs, "produce", "ratings", "--count", "2000", "--seed", "10")...)
	if r.code != 0 || !strings.Contains(r.stdout, "acknowledged 2000 of 2000") {
		t.Fatalf("produce with the right SASL password: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	rep := e.reconcileRatings(2 * time.Minute)
	printScenario(t, "wrong-passwords", rep)
	if rep.Landed != 2000 {
		t.Errorf("landed %d of 2000 ratings produced with the right SASL password", rep.Landed)
	}
	noSecretIn(t, "the worker's log", good.logs.String(), secret)
}
