package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
)

// binary is the domination binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "domination-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "domination")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/domination/domination/cmd/domination")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build domination:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's private world: its own database, topics and groups.
type env struct {
	t          *testing.T
	brokers    []string
	chAddr     string
	database   string
	ratings    string
	shadow     string
	dlq        string
	visits     string
	active     string
	group      string
	vgroup     string
	repart     string
	vdlq       string
	chGroup    string
	chAVGroup  string
	conn       driver.Conn
	migratedUp bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, testenv.KafkaBrokers(t), testenv.ClickHouseAddr(t))
}

// newEnvAt is newEnv on other services than the shared ones: a second Kafka
// or ClickHouse that a test may stop.
func newEnvAt(t *testing.T, brokers []string, chAddr string) *env {
	t.Helper()
	e := &env{
		t:       t,
		brokers: brokers,
		chAddr:  chAddr,
	}
	base := testenv.Name(t, "e2e")
	e.database = base
	e.ratings, e.shadow, e.dlq = base+"-dominate", base+"-shadow", base+"-dominate-dlq"
	e.visits, e.active = base+"-visits", base+"-active-visitors"
	e.group, e.chGroup, e.chAVGroup = base+"-workers", base+"-ch-shadow", base+"-ch-av"
	e.vgroup, e.repart, e.vdlq = base+"-visits", base+"-repartition", base+"-visits-dlq"
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{e.chAddr}})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	e.conn = conn
	t.Cleanup(func() {
		if e.migratedUp {
			// Drop the Kafka engine tables first so their consumers stop.
			e.cli("migrate", "down")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.database)
		_ = conn.Close()
		c := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.ratings, e.shadow, e.dlq, e.visits, e.active, e.repart, e.vdlq}})
	})
	return e
}

// args are the global flags that point a command at this test's world.
func (e *env) args() []string {
	return []string{
		"--kafka-brokers", strings.Join(e.brokers, ","),
		"--clickhouse-addr", e.chAddr,
		"--clickhouse-database", e.database,
		"--ratings-topic", e.ratings,
		"--shadow-topic", e.shadow,
		"--ratings-dlq-topic", e.dlq,
		"--visits-topic", e.visits,
		"--active-visitors-topic", e.active,
		"--visits-dlq-topic", e.vdlq,
	}
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs the binary with exactly args and a deadline.
func run(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	return runEnv(t, timeout, nil, args...)
}

// runEnv is run with extra environment variables.
func runEnv(t *testing.T, timeout time.Duration, environ []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run domination %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("domination %s did not finish within %s\nstderr: %s", strings.Join(args, " "), timeout, r.stderr)
	}
	return r
}

// cli runs a subcommand in this test's world and fails the test unless it
// exits 0.
func (e *env) cli(args ...string) result {
	e.t.Helper()
	full := append(e.args(), args...)
	r := runEnv(e.t, 3*time.Minute, e.environ(), full...)
	if r.code != 0 {
		e.t.Fatalf("domination %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// environ names this test's consumer groups for the commands that take
// them, so that every command, flags or not, stays in the test's world.
func (e *env) environ() []string {
	return []string{
		"DOMINATION_SHADOW_CONSUMER_GROUP=" + e.chGroup,
		"DOMINATION_ACTIVE_VISITORS_CONSUMER_GROUP=" + e.chAVGroup,
		"DOMINATION_SHADOW_GROUP=" + e.group,
		"DOMINATION_VISITS_GROUP=" + e.vgroup,
		"DOMINATION_REPARTITION_TOPIC=" + e.repart,
	}
}

// migrateUp creates this test's tables.
func (e *env) migrateUp() {
	e.t.Helper()
	e.cli("migrate", "up")
	e.migratedUp = true
}

// guardArgs point a worker's guard at this test's engine groups, with
// dead-letter topics and groups of its own.
func (e *env) guardArgs() []string {
	return []string{
		"--guard-group", e.database + "-guard",
		"--shadow-consumer-group", e.chGroup, "--active-visitors-consumer-group", e.chAVGroup,
		"--shadow-dlq-topic", e.shadow + "-dlq", "--active-visitors-dlq-topic", e.active + "-dlq",
	}
}

// worker is a `domination worker` child process.
type worker struct {
	t    *testing.T
	cmd  *exec.Cmd
	port int
	logs *testenv.Buffer
	done chan error
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

// startWorker starts a worker in this test's world and waits until its web
// server answers.
func (e *env) startWorker(extra ...string) *worker {
	e.t.Helper()
	return e.startWorkerEnv(e.environ(), extra...)
}

// startWorkerEnv is startWorker with environ as the worker's extra
// environment instead of e.environ() (tests of credentials pass secrets
// this way).
func (e *env) startWorkerEnv(environ []string, extra ...string) *worker {
	e.t.Helper()
	port := freePort(e.t)
	args := append(e.args(), "worker", "-l", "info", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port), "--shadow-group", e.group)
	args = append(args, e.guardArgs()...)
	args = append(args, extra...)
	w := &worker{t: e.t, port: port, logs: &testenv.Buffer{}, done: make(chan error, 1)}
	w.cmd = exec.Command(binary, args...)
	w.cmd.Env = append(os.Environ(), environ...)
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		e.t.Fatalf("start worker: %v", err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	e.t.Cleanup(func() {
		w.stop(syscall.SIGKILL)
		if e.t.Failed() {
			e.t.Logf("worker on port %d logs:\n%s", port, w.logs.String())
		}
	})
	testenv.WaitFor(e.t, "worker /healthz", 30*time.Second, func() bool {
		res, err := http.Get(w.url("/healthz"))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return w
}

func (w *worker) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", w.port, path) }

// stop signals the worker and waits for it to exit, returning its error.
func (w *worker) stop(sig syscall.Signal) error {
	if w.cmd.ProcessState != nil {
		return nil
	}
	_ = w.cmd.Process.Signal(sig)
	select {
	case err := <-w.done:
		w.done <- err
		return err
	case <-time.After(45 * time.Second):
		_ = w.cmd.Process.Kill()
		return fmt.Errorf("worker did not exit within 45s of %s", sig)
	}
}

// metric returns the sum of the samples of a metric whose line starts with
// prefix (name and, optionally, labels) on the worker's /metrics.
func (w *worker) metric(prefix string) float64 {
	w.t.Helper()
	res, err := http.Get(w.url("/metrics"))
	if err != nil {
		w.t.Fatalf("get metrics: %v", err)
	}
	defer res.Body.Close()
	return sumMetric(res.Body, prefix)
}

// sumMetric sums the samples of the Prometheus text exposition in body whose
// line starts with prefix.
func sumMetric(body io.Reader, prefix string) float64 {
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(body)
	var sum float64
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// detachShadowStore detaches the shadow store's materialized view, so that
// the engine commits nothing while shadow events wait; the function it
// returns attaches the view again, as the test's cleanup does if the test
// has not.
func (e *env) detachShadowStore() (attach func()) {
	e.t.Helper()
	if err := e.conn.Exec(context.Background(), "DETACH TABLE "+e.database+".shadow_consumer"); err != nil {
		e.t.Fatal(err)
	}
	attached := false
	e.t.Cleanup(func() {
		if !attached {
			_ = e.conn.Exec(context.Background(), "ATTACH TABLE "+e.database+".shadow_consumer")
		}
	})
	return func() {
		e.t.Helper()
		if err := e.conn.Exec(context.Background(), "ATTACH TABLE "+e.database+".shadow_consumer"); err != nil {
			e.t.Fatal(err)
		}
		attached = true
	}
}

// waitForWindows waits until get returns at least as many windows as want,
// then fails t unless they are want; where names what holds them.
func waitForWindows(t *testing.T, where string, within time.Duration, want []string, get func() []string) {
	t.Helper()
	var got []string
	testenv.WaitFor(t, fmt.Sprintf("%d windows on %s", len(want), where), within, func() bool {
		got = get()
		return len(got) >= len(want)
	})
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds other windows than the offline recomputation: %s", where, diff(got, want))
	}
}

// partitions reads topic's partitions from the first broker.
func (e *env) partitions(topic string) ([]kafka.Partition, error) {
	e.t.Helper()
	conn, err := kafka.Dial("tcp", e.brokers[0])
	if err != nil {
		e.t.Fatalf("dial kafka: %v", err)
	}
	defer conn.Close()
	return conn.ReadPartitions(topic)
}

// writer returns a writer to topic with a transport of its own: kafka-go's
// shared default transport caches metadata that predates this test's topics.
func (e *env) writer(topic string) *kafka.Writer {
	w := &kafka.Writer{
		Addr: kafka.TCP(e.brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchBytes: 4 << 20, Balancer: &kafka.Murmur2Balancer{},
		Transport: &kafka.Transport{MetadataTTL: time.Second},
	}
	e.t.Cleanup(func() { _ = w.Close() })
	return w
}
