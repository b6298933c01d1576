package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/producer"
	"github.com/domination/domination/wire"
)

// expectedCounts recomputes offline what the seeded stream must yield.
func expectedCounts(seed int64, n int) map[string]uint64 {
	s := producer.NewRatingStream(seed, 1, 100)
	out := map[string]uint64{}
	for i := 0; i < n; i++ {
		r, _ := s.Next()
		out[wire.Classify(r).String()]++
	}
	return out
}

// queryCounts runs `domination query shadow --format json` and returns the
// counts by type.
func (e *env) queryCounts() map[string]uint64 {
	e.t.Helper()
	r := e.cli("query", "shadow", "--since", "1h", "--format", "json")
	var rows []struct {
		Type  string `json:"type"`
		Count uint64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("query shadow printed %q: %v", r.stdout, err)
	}
	out := map[string]uint64{}
	for _, row := range rows {
		out[row.Type] = row.Count
	}
	return out
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

const seed, ratings = 20261123, 100000

func TestQueryShadowReportsExactCountsForASeededStreamWithOneWorker(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	e.startWorker()
	out := e.cli("produce", "ratings", "--count", strconv.Itoa(ratings), "--seed", strconv.Itoa(seed)).stdout
	if !strings.Contains(out, "acknowledged 100000 of 100000") {
		t.Fatalf("produce printed %q", out)
	}
	want := expectedCounts(seed, ratings)
	var got map[string]uint64
	testenv.WaitFor(t, "query shadow to report every rating", 60*time.Second, func() bool {
		got = e.queryCounts()
		return sum(got) >= ratings
	})
	if !equalCounts(got, want) {
		t.Fatalf("query shadow reports %v, want %v", got, want)
	}
	t.Logf("all %d ratings were queryable", ratings)
}

func TestQueryShadowStaysExactWhenAWorkerIsKilledMidwayAndRestarted(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	a := e.startWorker("--max-batch", "500")
	e.startWorker("--max-batch", "500")

	// Produce at a bounded rate so the kill lands mid-stream.
	done := make(chan result, 1)
	go func() {
		done <- runEnv(t, 3*time.Minute, e.environ(), append(e.args(), "produce", "ratings", "--count", strconv.Itoa(ratings), "--seed", strconv.Itoa(seed), "--rate", "20000")...)
	}()
	testenv.WaitFor(t, "worker a to process some ratings", 60*time.Second, func() bool {
		return a.metric(`domination_committed_total{agent="shadow"}`) > 5000
	})
	if err := a.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL did not end worker a with an error status")
	}
	e.startWorker("--max-batch", "500") // a replaces the killed one
	if r := <-done; r.code != 0 {
		t.Fatalf("produce exited %d: %s", r.code, r.stderr)
	}
	want := expectedCounts(seed, ratings)
	var got map[string]uint64
	testenv.WaitFor(t, "query shadow to report every rating", 120*time.Second, func() bool {
		got = e.queryCounts()
		return sum(got) >= ratings
	})
	// Every re-delivered rating has landed once the workers have committed
	// the whole ratings topic and ClickHouse the whole shadow topic.
	testenv.WaitFor(t, "the workers and ClickHouse caught up", 2*time.Minute, func() bool {
		return e.caughtUp(e.group, e.ratings) && e.caughtUp(e.chGroup, e.shadow)
	})
	got = e.queryCounts()
	if !equalCounts(got, want) {
		t.Fatalf("after a SIGKILL, query shadow reports %v, want %v", got, want)
	}
	raw := e.count("SELECT count() FROM shadow")
	t.Logf("exact after SIGKILL: %d ratings, %d rows stored before de-duplication", ratings, raw)
}

func TestQueryShadowTypeInjectionIsRejectedAndTablesStayIntact(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	e.startWorker()
	e.cli("produce", "ratings", "--count", "1000", "--seed", "3")
	testenv.WaitFor(t, "1000 ratings", 60*time.Second, func() bool { return e.count("SELECT count() FROM shadow FINAL") == 1000 })
	r := runEnv(t, time.Minute, e.environ(), append(e.args(), "query", "shadow", "--type", "x' OR 1=1 --")...)
	if r.code == 0 && strings.TrimSpace(r.stdout) != "" && !strings.Contains(r.stdout, "(0 rows)") {
		t.Fatalf("an injected --type matched rows: %s", r.stdout)
	}
	if n := e.count("SELECT count() FROM shadow FINAL"); n != 1000 {
		t.Fatalf("shadow holds %d rows after the injection attempt, want 1000", n)
	}
}
