//go:build reliability

package e2e

// The reliability suite breaks the pipeline on purpose and proves, with
// internal/verify, that every input is accounted for: landed in ClickHouse or
// dead-lettered with its reason, nothing missing, nothing counted twice. Each
// scenario prints one line
//
//	scenario=<name> produced=N landed=N missing=0 duplicated=0 dead_lettered=N
//
// on stdout, and appends it to $DOMINATION_RELIABILITY_REPORT when set
// (`make test-reliability` prints that file at the end, since go test hides
// the output of passing packages). Run it with
// `go test -tags reliability -run Reliability ./internal/e2e/`.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/verify"
	"github.com/domination/domination/producer"
)

var reportMu sync.Mutex

// printScenario prints a scenario's line, records it in the report file and
// fails t unless nothing is missing, duplicated, misclassified or
// unexplained.
func printScenario(t *testing.T, scenario string, r verify.Report) {
	t.Helper()
	line := r.Line(scenario)
	fmt.Println(line)
	t.Logf("%s: %s", scenario, r)
	report(t, line)
	if r.Missing != 0 || r.Duplicated != 0 {
		t.Errorf("%s: %d missing, %d duplicated (samples: missing %v, duplicated %v)", scenario, r.Missing, r.Duplicated, r.MissingSample, r.DuplicatedSample)
	}
	if r.Mismatched != 0 || r.Unexpected != 0 {
		t.Errorf("%s: %d stored rows disagree with their input, %d rows or dead letters no input explains", scenario, r.Mismatched, r.Unexpected)
	}
}

// twoWorkersOnOwnKafka starts a private broker and, on a migrated
// environment that uses it, two workers with batches of at most 500.
func twoWorkersOnOwnKafka(t *testing.T) (*instance, *env, []*worker) {
	t.Helper()
	k, _ := startKafka(t, "")
	e := newEnvAt(t, []string{k.addr}, testenv.ClickHouseAddr(t))
	e.migrateUp()
	flags := []string{"--max-batch", "500"}
	return k, e, []*worker{e.startWorker(flags...), e.startWorker(flags...)}
}

// shadowCommitted sums the ratings the shadow agents of workers committed.
func shadowCommitted(workers []*worker) float64 {
	var n float64
	for _, w := range workers {
		n += w.metric(`domination_committed_total{agent="shadow"}`)
	}
	return n
}

// stopKafkaFor stops the broker k for d (counted from the stop), fails t if
// a worker exits meanwhile, starts k again and waits until the workers
// commit again.
func stopKafkaFor(t *testing.T, k *instance, workers []*worker, d time.Duration) {
	t.Helper()
	stopped := time.Now()
	k.stop()
	before := shadowCommitted(workers)
	time.Sleep(d - time.Since(stopped)) // the outage itself
	for i, w := range workers {
		if !w.alive() {
			t.Fatalf("worker %d exited during the Kafka outage:\n%s", i, w.logs.String())
		}
	}
	k.up()
	t.Logf("kafka was down for %s; the workers had committed %.0f ratings", time.Since(stopped).Round(time.Second), before)
	testenv.WaitFor(t, "the workers to commit again after the outage", 2*time.Minute, func() bool { return shadowCommitted(workers) > before })
}

// everyRatingLanded waits for the producer to report n ratings acknowledged
// on acked, then prints the scenario's line and fails t unless every
// produced input landed.
func (e *env) everyRatingLanded(t *testing.T, scenario string, acked <-chan int, n int) {
	t.Helper()
	if got := <-acked; got != n {
		t.Fatalf("the producer got %d of %d ratings acknowledged", got, n)
	}
	rep := e.reconcileRatings(4 * time.Minute)
	printScenario(t, scenario, rep)
	if rep.Landed != rep.Produced || rep.Produced < n {
		t.Errorf("produced %d input records (%d ratings), landed %d", rep.Produced, n, rep.Landed)
	}
}

// report appends line to the report file DOMINATION_RELIABILITY_REPORT
// names, if any, with PASS or FAIL: written when the test ends, so the
// status counts every check.
func report(t *testing.T, line string) {
	path := os.Getenv("DOMINATION_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	t.Cleanup(func() {
		status := "PASS"
		if t.Failed() {
			status = "FAIL"
		}
		reportMu.Lock()
		defer reportMu.Unlock()
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s\n", line, status)
			f.Close()
		}
	})
}

// settle polls a reconciliation until it is clean or within ends, then
// checks once more a few seconds later, so that a row re-delivered late
// still counts against the result.
func (e *env) settle(check func(context.Context) (verify.Report, error), within time.Duration) verify.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	r, err := verify.Poll(ctx, time.Second, check)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	if r.OK() {
		time.Sleep(3 * time.Second)
		if r, err = check(context.Background()); err != nil {
			e.t.Fatalf("reconcile: %v", err)
		}
	}
	return r
}

// reconcileRatings accounts for every record of the ratings topic.
func (e *env) reconcileRatings(within time.Duration) verify.Report {
	e.t.Helper()
	check, err := e.source().Ratings(context.Background(), verify.RatingsCheck{InputTopic: e.ratings, DeadLetterTopic: e.dlq})
	if err != nil {
		e.t.Fatalf("read the ratings topic: %v", err)
	}
	r := e.settle(check, within)
	e.t.Logf("shadow stores %d rows before de-duplication", e.count("SELECT count() FROM shadow"))
	return r
}

// reconcileVisits accounts for every record of the visits topic.
func (e *env) reconcileVisits(window time.Duration, within time.Duration) verify.Report {
	e.t.Helper()
	check, err := e.source().Visits(context.Background(), verify.VisitsCheck{InputTopic: e.visits, DeadLetterTopic: e.vdlq, Window: window})
	if err != nil {
		e.t.Fatalf("read the visits topic: %v", err)
	}
	return e.settle(check, within)
}

// steadyRatings produces n seeded ratings at about rate per second in
// batches, each record stamped once, before its first attempt. A batch that
// fails is sent again, with the same timestamps, until Kafka acknowledges it
// or ctx ends: a producer that rides out an outage. A retried batch may be
// stored twice; its copies are the same rating with the same timestamp. It
// returns how many ratings were acknowledged.
func (e *env) steadyRatings(ctx context.Context, seed int64, n, rate int) int {
	w := &kafka.Writer{
		Addr: kafka.TCP(e.brokers...), Topic: e.ratings, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchSize: 1000, Balancer: &kafka.Murmur2Balancer{},
		WriteTimeout: 5 * time.Second, MaxAttempts: 1,
		Transport: &kafka.Transport{MetadataTTL: time.Second, DialTimeout: 2 * time.Second},
	}
	defer w.Close()
	s := producer.NewRatingStream(seed, 1, 100)
	const per = 200
	every := time.Duration(float64(time.Second) * per / float64(rate))
	acked, failures := 0, 0
	next := time.Now()
	for acked < n && ctx.Err() == nil {
		batch := make([]kafka.Message, min(per, n-acked))
		now := time.Now()
		for i := range batch {
			v, id := s.AppendJSON(nil)
			batch[i] = kafka.Message{Key: []byte(id), Value: v, Time: now}
		}
		for ctx.Err() == nil {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := w.WriteMessages(wctx, batch...)
			cancel()
			if err == nil {
				break
			}
			failures++
			if failures%20 == 1 {
				e.t.Logf("produce ratings: %v (retrying)", err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if ctx.Err() == nil {
			acked += len(batch)
		}
		next = next.Add(every)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			next = time.Now()
		}
	}
	return acked
}

// produceRatingsAsync runs `domination produce ratings` at a rate in the
// background; wait returns its result.
func (e *env) produceRatingsAsync(seed int64, n, rate int) (wait func() result) {
	done := make(chan result, 1)
	go func() {
		done <- runEnv(e.t, 10*time.Minute, e.environ(), append(e.args(), "produce", "ratings",
			"--count", strconv.Itoa(n), "--seed", strconv.FormatInt(seed, 10), "--rate", strconv.Itoa(rate))...)
	}()
	return func() result {
		r := <-done
		if r.code != 0 {
			e.t.Fatalf("produce ratings exited %d: %s", r.code, r.stderr)
		}
		return r
	}
}

// alive reports whether the worker process has not exited.
func (w *worker) alive() bool {
	select {
	case err := <-w.done:
		w.done <- err
		return false
	default:
		return true
	}
}

// readiness returns the status code and body of the worker's /ready.
func (w *worker) readiness() (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(w.url("/ready"))
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// rng is the suite's source of "random points"; its seed is logged so a
// failing run can be replayed with DOMINATION_RELIABILITY_SEED.
func rng(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DOMINATION_RELIABILITY_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("random seed %d (set DOMINATION_RELIABILITY_SEED to replay)", seed)
	return rand.New(rand.NewPCG(seed, 0x7265_6c69_6162_6c65))
}

// instance is a second Kafka or ClickHouse, started with the project's own
// scripts on free ports with data in a temporary directory, that a test may
// stop and start without disturbing the shared services other packages use.
type instance struct {
	t      *testing.T
	script string
	env    []string
	addr   string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// startKafka starts a second broker; with sasl, it also listens for
// SASL_PLAINTEXT (PLAIN, user domination, password sasl) on saslAddr.
func startKafka(t *testing.T, sasl string) (k *instance, saslAddr string) {
	t.Helper()
	dir := t.TempDir()
	// Reuse the jars the shared broker was started with (hard links) rather
	// than fetching them again.
	if libs := filepath.Join(repoRoot(), ".services", "kafka", "libs"); exists(filepath.Join(libs, ".pom.sha")) {
		_ = os.MkdirAll(filepath.Join(dir, "kafka"), 0o755)
		if out, err := exec.Command("cp", "-al", libs, filepath.Join(dir, "kafka", "libs")).CombinedOutput(); err != nil {
			t.Logf("link kafka jars: %v %s", err, out)
		}
	}
	port, cport := freePort(t), freePort(t)
	env := []string{"DOMINATION_SERVICES_DIR=" + dir, "KAFKA_PORT=" + strconv.Itoa(port), "KAFKA_CONTROLLER_PORT=" + strconv.Itoa(cport)}
	if sasl != "" {
		sp := freePort(t)
		saslAddr = fmt.Sprintf("127.0.0.1:%d", sp)
		env = append(env, "KAFKA_SASL_PORT="+strconv.Itoa(sp), "KAFKA_SASL_USERNAME=domination", "KAFKA_SASL_PASSWORD="+sasl)
	}
	k = &instance{t: t, script: "kafka.sh", env: env, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	k.up()
	t.Cleanup(k.down)
	return k, saslAddr
}

// startClickHouse starts a second ClickHouse server.
func startClickHouse(t *testing.T) *instance {
	t.Helper()
	dir := t.TempDir()
	port, hport := freePort(t), freePort(t)
	c := &instance{t: t, script: "clickhouse.sh", addr: fmt.Sprintf("127.0.0.1:%d", port),
		env: []string{"DOMINATION_SERVICES_DIR=" + dir, "CLICKHOUSE_TCP_PORT=" + strconv.Itoa(port), "CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(hport)}}
	c.up()
	t.Cleanup(c.down)
	return c
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func (i *instance) run(verb string) error {
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "services", i.script), verb)
	cmd.Env = append(os.Environ(), i.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", i.script, verb, err, out)
	}
	return nil
}

// up starts the instance and waits until it answers.
func (i *instance) up() {
	i.t.Helper()
	start := time.Now()
	if err := i.run("up"); err != nil {
		i.t.Fatal(err)
	}
	i.t.Logf("%s up at %s in %s", i.script, i.addr, time.Since(start).Round(time.Millisecond))
}

// stop stops the instance (TERM, then KILL after 20 s).
func (i *instance) stop() {
	i.t.Helper()
	if err := i.run("down"); err != nil {
		i.t.Fatal(err)
	}
	i.t.Logf("%s at %s stopped", i.script, i.addr)
}

func (i *instance) down() {
	if err := i.run("down"); err != nil {
		i.t.Log(err)
	}
}
