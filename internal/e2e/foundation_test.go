package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/testenv"
)

func TestMigrateUpCreatesEveryObjectAndDownRemovesThem(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	// What the shipped migrations create on this server, and their last
	// version.
	v, err := clickhouse.ServerVersion(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	want := clickhouse.ObjectsFor(v)
	slices.Sort(want)
	ms, err := clickhouse.RenderUp(clickhouse.KafkaSource{}, v)
	if err != nil {
		t.Fatal(err)
	}
	last := ms[len(ms)-1].Version
	if got := e.tables(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after migrate up the database holds %v, want %v", got, want)
	}
	if out := e.cli("migrate", "version").stdout; !strings.Contains(out, fmt.Sprintf("version: %d", last)) {
		t.Fatalf("migrate version printed %q, want version %d", out, last)
	}
	e.cli("migrate", "up") // a second up is a no-op
	e.cli("migrate", "down")
	if got := e.tables(); len(got) != 0 {
		t.Fatalf("after migrate down the database still holds %v", got)
	}
	e.migrateUp()
	if got := e.tables(); len(got) != len(want) {
		t.Fatalf("migrate up after down created %v, want %v", got, want)
	}
}

// tables lists the test database's tables and views, without the migration
// bookkeeping table.
func (e *env) tables() []string {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? AND name != 'schema_migrations'", e.database)
	if err != nil {
		e.t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestMigrateAgainstAStoppedClickHouseFailsFastWithOneLineNamingTheAddress(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := run(t, 30*time.Second, "--clickhouse-addr", addr, "migrate", "up")
	if r.code == 0 {
		t.Fatal("migrate up against a stopped ClickHouse exited 0")
	}
	if r.took > 10*time.Second {
		t.Fatalf("migrate up took %s to fail, want under 10s", r.took)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], addr) {
		t.Fatalf("stderr is %q, want one line naming %s", r.stderr, addr)
	}
	if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
		t.Fatalf("stderr holds a stack trace: %s", r.stderr)
	}
}

func TestBadFlagsGiveOneLineAndANonZeroExit(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"worker", "--web-port", "not-a-number"},
		{"query", "shadow", "--by", "week"},
		{"query", "shadow", "--format", "xml"},
		{"query", "shadow", "--since", "yesterday-ish"},
		{"query", "shadow", "--type", "x' OR 1=1 --"},
		{"-l", "loud", "migrate", "version"},
		{"--kafka-sasl-mechanism", "GSSAPI", "worker"},
		{"migrate", "force"},
	} {
		r := run(t, 30*time.Second, args...)
		if r.code == 0 {
			t.Errorf("domination %v exited 0", args)
			continue
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "domination: ") {
			t.Errorf("domination %v wrote %q to stderr, want one line starting 'domination: '", args, r.stderr)
		}
	}
}

func TestHelpDescribesEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"worker", "--help"}, {"migrate", "--help"}, {"migrate", "up", "--help"},
		{"query", "shadow", "--help"}, {"query", "active-visitors", "--help"}, {"produce", "ratings", "--help"},
	} {
		r := run(t, 30*time.Second, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("domination %v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := run(t, 30*time.Second, "worker", "--help")
	for _, flag := range []string{"--web-port", "--loglevel", "--shutdown-timeout", "DOMINATION_WEB_PORT"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("worker --help does not mention %s", flag)
		}
	}
}

func TestAShadowEventProducedToKafkaAppearsInClickHouse(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.writer(e.shadow)
	now := time.Now().Unix()
	msg := fmt.Sprintf(`{"type":"Sha","unique_id":"one-event","emit_timestamp":%d,"rating":3}`, now)
	start := time.Now()
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("one-event"), Value: []byte(msg)}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	testenv.WaitFor(t, "the event in shadow", 30*time.Second, func() bool {
		return e.count("SELECT count() FROM shadow FINAL WHERE unique_id = 'one-event'") == 1
	})
	t.Logf("the event was queryable %s after it was produced", time.Since(start).Round(time.Millisecond))
}

// count runs a count query in the test database.
func (e *env) count(sql string, args ...any) uint64 {
	e.t.Helper()
	var n uint64
	ctx := context.Background()
	if err := e.conn.QueryRow(ctx, strings.Replace(sql, " FROM ", " FROM "+e.database+".", 1), args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestComposeFileIsValid(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	compose := filepath.Join(filepath.Dir(file), "..", "..", "docker-compose.yml")
	var cmd *exec.Cmd
	if _, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command("docker-compose", "-f", compose, "config", "-q")
	} else {
		cmd = exec.Command("docker", "compose", "-f", compose, "config", "-q")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s (scripts/test-deps.sh installs docker-compose)", strings.Join(cmd.Args, " "), err, out)
	}
}
