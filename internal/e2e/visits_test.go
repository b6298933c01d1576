package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// windowCount is one (account, store, window) count, as a comparable string.
func windowCount(account int64, store *string, start int64, count uint64) string {
	s := "null"
	if store != nil {
		s = *store
	}
	return fmt.Sprintf("%d/%s/%d=%d", account, s, start, count)
}

// offlineWindows recomputes the windowed distinct counts from the visits
// topic itself, leaving out the visits that were dead-lettered.
func (e *env) offlineWindows(sent int, window int64) []string {
	e.t.Helper()
	// A visit counts unless it was refused: dead-lettered by the visits
	// stage (it never reached the repartition topic), or late in the
	// windows stage. A visit re-keyed twice (its first batch re-delivered
	// after a crash) may have its first copy counted and its second
	// dead-lettered as late, so a visit is left out only when every copy
	// of it on the repartition topic was dead-lettered.
	deadCopy := map[string]bool{} // "partition/offset" of repartition records dead-lettered
	refused := map[string]bool{}  // visit ids the visits stage dead-lettered
	for _, m := range e.readAllAvailable(e.vdlq) {
		if wire.HeaderValue(m.Headers, wire.HeaderTopic) == e.repart {
			deadCopy[wire.HeaderValue(m.Headers, wire.HeaderPartition)+"/"+wire.HeaderValue(m.Headers, wire.HeaderOffset)] = true
		} else {
			var v wire.Visit
			if json.Unmarshal(m.Value, &v) == nil {
				refused[v.ID] = true
			}
		}
	}
	copies, live := map[string]int{}, map[string]int{} // per visit id: repartition copies, and those not dead-lettered
	for _, m := range e.readAllAvailable(e.repart) {
		r, err := wire.DecodeRepartitioned(m.Value, time.Time{}, wire.VisitLimits{})
		if err != nil {
			continue
		}
		v := r.Visit()
		copies[v.ID]++
		if !deadCopy[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] {
			live[v.ID]++
		}
	}
	dead := func(id string) bool { return refused[id] || (copies[id] > 0 && live[id] == 0) }
	ids := map[wire.WindowKey]map[string]bool{}
	stores := map[wire.WindowKey]*string{}
	for _, m := range e.readAll(e.visits, sent, time.Minute) {
		var v wire.Visit
		if err := json.Unmarshal(m.Value, &v); err != nil {
			e.t.Fatalf("a produced visit is not JSON: %v", err)
		}
		if dead(v.ID) {
			continue
		}
		start := int64(math.Floor(float64(int64(v.Timestamp*1000))/1000/float64(window))) * window
		k := wire.ActiveVisitors{AccountID: v.AccountID, StoreID: v.StoreID, Start: start}.Key()
		if ids[k] == nil {
			ids[k] = map[string]bool{}
			stores[k] = v.StoreID
		}
		ids[k][v.ID] = true
	}
	var out []string
	for k, set := range ids {
		out = append(out, windowCount(k.AccountID, stores[k], k.Start, uint64(len(set))))
	}
	sort.Strings(out)
	return out
}

// readAllAvailable reads whatever topic holds now (it may not exist yet).
func (e *env) readAllAvailable(topic string) []kafkaMessage {
	e.t.Helper()
	return e.readUpTo(topic)
}

// storedWindows reads active_visitors with FINAL.
func (e *env) storedWindows() []string {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT account_id, store_id, toUInt32(window_start), count FROM "+e.database+".active_visitors FINAL")
	if err != nil {
		e.t.Fatalf("read active_visitors: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			account int64
			store   *string
			start   uint32
			count   uint64
		)
		if err := rows.Scan(&account, &store, &start, &count); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, windowCount(account, store, int64(start), count))
	}
	sort.Strings(out)
	return out
}

func diff(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	var missing, extra []string
	for s := range w {
		if !g[s] {
			missing = append(missing, s)
		}
	}
	for s := range g {
		if !w[s] {
			extra = append(extra, s)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("missing %v, unexpected %v", missing, extra)
}

const visitWindow = 2 // seconds

func visitArgs(max int, seed int) []string {
	return []string{"produce", "visits", "--account-id", "1", "--account-id", "2", "--account-id", "3",
		"--store-id", "north", "--store-id", "south", "--frequency", "250", "--max-messages", fmt.Sprint(max), "--seed", fmt.Sprint(seed)}
}

func TestActiveVisitorsEqualAnOfflineRecomputationWithTwoWorkers(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	window := []string{"--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s"}
	e.startWorker(window...)
	e.startWorker(window...)
	const sent = 2000
	if out := e.cli(visitArgs(sent, 11)...).stdout; !strings.Contains(out, fmt.Sprintf("acknowledged %d of %d", sent, sent)) {
		t.Fatalf("produce visits printed %q", out)
	}
	want := e.offlineWindows(sent, visitWindow)
	waitForWindows(t, "active_visitors", 60*time.Second, want, e.storedWindows)
	t.Logf("%d windows over 9 keys equal the offline recomputation", len(want))
}

func TestActiveVisitorsStayExactWhenAWorkerIsKilledMidWindow(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	window := []string{"--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s", "--max-batch", "50"}
	a := e.startWorker(window...)
	e.startWorker(window...)
	const sent = 3000
	done := make(chan result, 1)
	go func() { done <- runEnv(t, 3*time.Minute, e.environ(), append(e.args(), visitArgs(sent, 12)...)...) }()
	testenv.WaitFor(t, "worker a to count some visits", 60*time.Second, func() bool {
		return a.metric(`domination_committed_total{agent="windows"}`) > 300
	})
	if err := a.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL did not end worker a with an error status")
	}
	e.startWorker(window...)
	if r := <-done; r.code != 0 {
		t.Fatalf("produce visits exited %d: %s", r.code, r.stderr)
	}
	// Every record has been through both stages once the visits and window
	// stages have committed their whole topics (no window is open), and any
	// re-emitted window has landed once ClickHouse has committed the whole
	// active-visitors topic; only then are the dead letters final, and the
	// recomputation with them.
	testenv.WaitFor(t, "both stages and ClickHouse caught up", 3*time.Minute, func() bool {
		return e.caughtUp(e.vgroup, e.visits) && e.caughtUp(e.vgroup+"-windows", e.repart) && e.caughtUp(e.chAVGroup, e.active)
	})
	want := e.offlineWindows(sent, visitWindow)
	var got []string
	got = e.storedWindows()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after a SIGKILL, active_visitors differs from the offline recomputation: %s", diff(got, want))
	}
}
