//go:build reliability

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// poison are records no agent writes, of every kind a careless or hostile
// producer can put on an output topic. Each breaks the topic's contract;
// some the Kafka engine cannot parse (and 18.16's stops on), some it parses
// into defaults that the stores' views keep out.
func poison(topic string) []kafka.Message {
	r := rand.New(rand.NewPCG(7, 7))
	binary := make([]byte, 512)
	for i := range binary {
		binary[i] = byte(r.IntN(256))
	}
	huge := append([]byte(`{"type":"Sha","unique_id":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	huge = append(huge, `","emit_timestamp":1700000000,"rating":3}`...)
	var values [][]byte
	switch {
	case strings.HasSuffix(topic, "active-visitors"):
		values = [][]byte{
			[]byte(`not json at all`),
			[]byte(`{"account_id":"one","store_id":"uk","window":[1700000000,1700000010],"count":3}`),
			[]byte(`{"account_id":1,"store_id":"uk","window":"then","count":3}`),
			[]byte(`{"account_id":1,"store_id":"uk"}`),
			[]byte(`{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":0}`),
			binary,
			bytes.Repeat([]byte("{"), 1<<20),
		}
	default:
		values = [][]byte{
			[]byte(`not json at all`),
			[]byte(`{"type":"Bogus","unique_id":"poison-enum","emit_timestamp":1700000000,"rating":3}`),
			[]byte(`{"type":"Sha","unique_id":"poison-types","emit_timestamp":"yesterday","rating":"three"}`),
			[]byte(`{"unique_id":"poison-missing"}`),
			[]byte(`{"type":"Dow","unique_id":"poison-mismatch","emit_timestamp":1700000000,"rating":3}`),
			binary,
			huge,
		}
	}
	out := make([]kafka.Message, len(values))
	for i, v := range values {
		out[i] = kafka.Message{Key: []byte("poison-" + strconv.Itoa(i)), Value: v}
	}
	return out
}

// offsetsBreakingContract reads topic whole and returns the coordinates of
// every record that breaks its contract: the poison, wherever it landed.
func (e *env) offsetsBreakingContract(topic string, check func([]byte) error) map[string]bool {
	e.t.Helper()
	msgs, err := e.source().Records(context.Background(), topic, time.Time{})
	if err != nil {
		e.t.Fatalf("read %s: %v", topic, err)
	}
	out := map[string]bool{}
	for _, m := range msgs {
		if check(m.Value) != nil {
			out[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = true
		}
	}
	return out
}

// accounted returns the coordinates of topic's records found in its
// dead-letter topic and in its errors table.
func (e *env) accounted(topic, dlq, errorsTable string) (inDLQ, inTable map[string]bool) {
	e.t.Helper()
	inDLQ, inTable = map[string]bool{}, map[string]bool{}
	msgs, err := e.source().Records(context.Background(), dlq, time.Time{})
	if err != nil {
		e.t.Fatalf("read %s: %v", dlq, err)
	}
	for _, m := range msgs {
		inDLQ[wire.HeaderValue(m.Headers, wire.HeaderPartition)+"/"+wire.HeaderValue(m.Headers, wire.HeaderOffset)] = true
	}
	rows, err := e.conn.Query(context.Background(), "SELECT kafka_partition, kafka_offset FROM "+e.database+"."+errorsTable+" FINAL WHERE kafka_topic = ?", topic)
	if err != nil {
		e.t.Fatalf("read %s: %v", errorsTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, o int64
		if err := rows.Scan(&p, &o); err != nil {
			e.t.Fatalf("read %s: %v", errorsTable, err)
		}
		inTable[fmt.Sprintf("%d/%d", p, o)] = true
	}
	return inDLQ, inTable
}

// checkPoisonAccounted fails t unless every record of topic that breaks its
// contract is in the dead-letter topic or the errors table, and returns how
// many there were.
func (e *env) checkPoisonAccounted(topic, dlq, errorsTable string, check func([]byte) error, want int) int {
	e.t.Helper()
	var bad, inDLQ, inTable map[string]bool
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		bad = e.offsetsBreakingContract(topic, check)
		inDLQ, inTable = e.accounted(topic, dlq, errorsTable)
		missing = missing[:0]
		for at := range bad {
			if !inDLQ[at] && !inTable[at] {
				missing = append(missing, at)
			}
		}
		if len(missing) == 0 && len(bad) == want {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d records break the contract (want %d); not accounted for: %v; dead letters at %v; errors table rows at %v",
				topic, len(bad), want, missing, slices.Sorted(maps.Keys(inDLQ)), slices.Sorted(maps.Keys(inTable)))
		}
		time.Sleep(2 * time.Second) // polling the topic and the table; nothing to wait on
	}
	e.t.Logf("%s: %d poison records; %d in %s, %d in %s", topic, len(bad), len(inDLQ), dlq, len(inTable), errorsTable)
	return len(bad)
}

// The guard acts after the status has had time to report the stall.
const (
	testSkipAfter  = "8s"
	testStallAfter = "3s"
)

func TestReliabilityPoisonOnTheShadowTopicNeverStallsIngestion(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--guard-skip-after", testSkipAfter, "--stall-after", testStallAfter)
	const n = 100000
	wait := e.produceRatingsAsync(1010, n, 20000)
	// Half way, poison straight on the shadow topic.
	testenv.WaitFor(t, "half the ratings classified", 2*time.Minute, func() bool {
		return w.metric(`domination_committed_total{agent="shadow"}`) >= n/2
	})
	bad := poison(e.shadow)
	if err := e.writer(e.shadow).WriteMessages(context.Background(), bad...); err != nil {
		t.Fatalf("write poison: %v", err)
	}
	poisoned := time.Now()
	// The stall shows while it lasts, before the guard moves the engine on.
	testenv.WaitFor(t, "the stall reported in metrics", time.Minute, func() bool {
		return w.metric(`domination_clickhouse_stalled{table="shadow"}`) >= 1
	})
	stalled := time.Since(poisoned)
	if body := w.get("/status"); !stalledJSON.MatchString(body) {
		t.Errorf("/status during the stall does not report it: %.400s", body)
	}
	testenv.WaitFor(t, "the guard to move the engine past the poison", 2*time.Minute, func() bool {
		return w.metric(`domination_clickhouse_guard_skipped_total{reason="contract",table="shadow"}`) >= 1
	})
	firstSkip := time.Since(poisoned)
	wait()
	r := e.reconcileRatings(3 * time.Minute)
	resumed := time.Since(poisoned)
	accounted := e.checkPoisonAccounted(e.shadow, e.shadow+"-dlq", "shadow_errors", wire.CheckShadow, len(bad))
	skipped := w.metric(`domination_clickhouse_guard_skipped_total{reason="contract",table="shadow"}`)
	fmt.Fprintf(os.Stdout, "poison-shadow: %d poison records accounted for, %.0f skipped by the guard; stall reported %s after the poison, first skip after %s, every rating stored after %s\n",
		accounted, skipped, stalled.Round(time.Second), firstSkip.Round(time.Second), resumed.Round(time.Second))
	printScenario(t, "poison-shadow", r)
}

func TestReliabilityPoisonOnTheActiveVisitorsTopicNeverStallsIngestion(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--guard-skip-after", testSkipAfter, "--stall-after", testStallAfter, "--window", "2s", "--grace", "1s")
	produce := func() {
		r := e.cli("produce", "visits", "--account-id", "1", "--account-id", "2", "--store-id", "uk", "--store-id", "us",
			"--frequency", "500", "--max-messages", "1500", "--seed", "11")
		if r.code != 0 {
			t.Fatalf("produce visits exited %d: %s", r.code, r.stderr)
		}
	}
	produce()
	bad := poison(e.active)
	if err := e.writer(e.active).WriteMessages(context.Background(), bad...); err != nil {
		t.Fatalf("write poison: %v", err)
	}
	produce()
	testenv.WaitFor(t, "the guard to move the engine past the poison", 2*time.Minute, func() bool {
		return w.metric(`domination_clickhouse_guard_skipped_total{reason="contract",table="active_visitors"}`) >= 1
	})
	r := e.reconcileVisits(2*time.Second, 3*time.Minute)
	e.checkPoisonAccounted(e.active, e.active+"-dlq", "active_visitors_errors", wire.CheckActiveVisitors, len(bad))
	printScenario(t, "poison-active-visitors", r)
}

func TestReliabilityStallOnValidRecordsIsReportedAndNeverSkipped(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--guard-skip-after", testSkipAfter, "--stall-after", testStallAfter)
	ctx := context.Background()
	// The store refuses inserts: the engine stalls on valid events.
	if err := e.conn.Exec(ctx, "DETACH TABLE "+e.database+".shadow"); err != nil {
		t.Fatal(err)
	}
	wait := e.produceRatingsAsync(2020, 5000, 5000)
	wait()
	testenv.WaitFor(t, "the guard to see a stall on valid records", 2*time.Minute, func() bool {
		return w.metric(`domination_clickhouse_guard_valid_stalls_total{table="shadow"}`) >= 1
	})
	if got := w.metric(`domination_clickhouse_guard_skipped_total{reason="contract",table="shadow"}`); got != 0 {
		t.Errorf("the guard skipped %.0f valid records", got)
	}
	if w.metric(`domination_clickhouse_stalled{table="shadow"}`) != 1 {
		t.Errorf("the stall on valid records is not in domination_clickhouse_stalled")
	}
	if r := runEnv(t, time.Minute, e.environ(), append(e.args(), "status", "--stall-after", testStallAfter, "--format", "json")...); r.code != 1 || !strings.Contains(r.stderr, "shadow") {
		t.Errorf("status during a stall exited %d, want 1 naming the table: %s %s", r.code, r.stdout, r.stderr)
	}
	if err := e.conn.Exec(ctx, "ATTACH TABLE "+e.database+".shadow"); err != nil {
		t.Fatal(err)
	}
	r := e.reconcileRatings(3 * time.Minute)
	if got := w.metric(`domination_clickhouse_guard_skipped_total{reason="contract",table="shadow"}`); got != 0 {
		t.Errorf("the guard skipped %.0f valid records", got)
	}
	printScenario(t, "valid-stall-store-detached", r)
}

var stalledJSON = regexp.MustCompile(`"stalled":\s*true`)

// get returns the body of the worker's path.
func (w *worker) get(path string) string {
	w.t.Helper()
	res, err := http.Get(w.url(path))
	if err != nil {
		w.t.Fatalf("get %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
