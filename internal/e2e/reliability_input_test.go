//go:build reliability

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/verify"
	"github.com/domination/domination/wire"
)

// hostile is one kind of bad input, how many copies to send, and the reason
// it must be dead-lettered with.
type hostile struct {
	name   string
	copies int
	value  func(i int) []byte
	// at, when set, is the Kafka timestamp of the record.
	at     time.Time
	reason wire.Reason
}

func sprintf(format string, args ...any) func(int) []byte {
	return func(i int) []byte { return []byte(fmt.Sprintf(format, append([]any{i}, args...)...)) }
}

func constant(s string) func(int) []byte { return func(int) []byte { return []byte(s) } }

// twoMB is a JSON object of 2 MB (a valid rating or visit plus padding).
func twoMB(prefix string) func(int) []byte {
	return func(i int) []byte {
		return []byte(fmt.Sprintf(`%s"pad":"%s"}`, fmt.Sprintf(prefix, i), strings.Repeat("p", 2_000_000)))
	}
}

func garbage(i int) []byte { return []byte{0xff, 0x00, 0xfe, byte(i), 0x7b, 0x80, 0x22} }

// badTimestamp is the reason a record with an absurd timestamp must carry.
const badTimestamp = wire.ReasonBadTimestamp

func hostileRatings() []hostile {
	return []hostile{
		{"invalid json", 10, sprintf(`{"rating": 5, "unique_id": "h-%d"`), time.Time{}, wire.ReasonMalformedJSON},
		{"binary garbage", 10, garbage, time.Time{}, wire.ReasonMalformedJSON},
		{"rating as a string", 10, sprintf(`{"rating":"5","unique_id":"h-%d"}`), time.Time{}, wire.ReasonWrongType},
		{"rating as a word", 10, sprintf(`{"rating":"five","unique_id":"h-%d"}`), time.Time{}, wire.ReasonWrongType},
		{"rating true", 10, sprintf(`{"rating":true,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonWrongType},
		{"rating 5.5", 10, sprintf(`{"rating":5.5,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonWrongType},
		{"unique_id as a number", 10, sprintf(`{"rating":5,"unique_id":%d}`), time.Time{}, wire.ReasonWrongType},
		{"missing rating", 10, sprintf(`{"unique_id":"h-%d"}`), time.Time{}, wire.ReasonMissingField},
		{"missing unique_id", 10, sprintf(`{"rating":5,"n":%d}`), time.Time{}, wire.ReasonMissingField},
		{"rating 0", 10, sprintf(`{"rating":0,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonOutOfRange},
		{"rating 101", 10, sprintf(`{"rating":101,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonOutOfRange},
		{"rating -1", 10, sprintf(`{"rating":-1,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonOutOfRange},
		{"rating 1e309", 10, sprintf(`{"rating":1e309,"unique_id":"h-%d"}`), time.Time{}, wire.ReasonWrongType},
		{"2 MB payload", 3, twoMB(`{"rating":5,"unique_id":"h-%d",`), time.Time{}, wire.ReasonTooLarge},
		{"empty unique_id", 10, constant(`{"rating":5,"unique_id":""}`), time.Time{}, wire.ReasonBadID},
		{"10 KB unique_id", 10, sprintf(`{"rating":5,"unique_id":"%d-` + strings.Repeat("x", 10<<10) + `"}`), time.Time{}, wire.ReasonBadID},
		// (A record stamped at the epoch itself cannot be sent with
		// kafka-go, which stamps timestamp 0 with the current time.)
		{"record stamped in 1970", 10, sprintf(`{"rating":5,"unique_id":"1970-%d"}`), time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), badTimestamp},
	}
}

func hostileVisits() []hostile {
	now := float64(time.Now().Unix())
	later := fmt.Sprint(now + 10*365*24*3600)
	return []hostile{
		{"invalid json", 10, sprintf(`{"id": "h-%d", "account_id": 1,`), time.Time{}, wire.ReasonMalformedJSON},
		{"binary garbage", 10, garbage, time.Time{}, wire.ReasonMalformedJSON},
		{"id as a number", 10, sprintf(`{"id":%d,"account_id":1,"store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonWrongType},
		{"account_id as a string", 10, sprintf(`{"id":"h-%d","account_id":"1","store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonWrongType},
		{"account_id 1e309", 10, sprintf(`{"id":"h-%d","account_id":1e309,"store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonWrongType},
		{"store_id as a number", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":5,"timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonWrongType},
		{"timestamp as a string", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"north","timestamp":"now"}`), time.Time{}, wire.ReasonWrongType},
		{"timestamp 1e309", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"north","timestamp":1e309}`), time.Time{}, wire.ReasonWrongType},
		{"missing id", 10, sprintf(`{"n":%d,"account_id":1,"store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonMissingField},
		{"missing account_id", 10, sprintf(`{"id":"h-%d","store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonMissingField},
		{"missing timestamp", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"north"}`), time.Time{}, wire.ReasonMissingField},
		{"2 MB payload", 3, twoMB(`{"id":"h-%d","account_id":1,"store_id":"north","timestamp":` + fmt.Sprint(now) + `,`), time.Time{}, wire.ReasonTooLarge},
		{"empty id", 10, constant(`{"id":"","account_id":1,"store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonBadID},
		{"10 KB id", 10, sprintf(`{"id":"%d-` + strings.Repeat("x", 10<<10) + `","account_id":1,"store_id":"north","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonBadID},
		{"empty store_id", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"","timestamp":` + fmt.Sprint(now) + `}`), time.Time{}, wire.ReasonBadStoreID},
		{"timestamp in 1970", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"north","timestamp":86400}`), time.Time{}, wire.ReasonBadTimestamp},
		{"timestamp ten years ahead", 10, sprintf(`{"id":"h-%d","account_id":1,"store_id":"north","timestamp":` + later + `}`), time.Time{}, wire.ReasonBadTimestamp},
	}
}

// mix interleaves valid records with every copy of every hostile kind,
// one bad record after every few valid ones, and returns the reasons the
// bad ones must be dead-lettered with.
func mix(valid []kafka.Message, kinds []hostile) ([]kafka.Message, map[string]int) {
	var bad []kafka.Message
	want := map[string]int{}
	n := 0
	for _, k := range kinds {
		for c := range k.copies {
			bad = append(bad, kafka.Message{Key: []byte(fmt.Sprintf("bad-%d", n)), Value: k.value(n), Time: k.at})
			want[string(k.reason)]++
			n++
			_ = c
		}
	}
	every := max(len(valid)/len(bad), 1)
	out := make([]kafka.Message, 0, len(valid)+len(bad))
	for i, v := range valid {
		out = append(out, v)
		if i%every == every-1 && len(bad) > 0 {
			out = append(out, bad[0])
			bad = bad[1:]
		}
	}
	return append(out, bad...), want
}

// bigWriter writes records of up to 2 MB, one such record per request.
func (e *env) bigWriter(topic string) *kafka.Writer {
	w := e.writer(topic)
	w.BatchBytes = 3 << 20
	return w
}

// checkDeadLetterMetrics compares the worker's dead-letter counters for
// agent with the reasons injected.
func checkDeadLetterMetrics(t *testing.T, w *worker, agent string, want map[string]int) {
	t.Helper()
	total := 0
	for reason, n := range want {
		total += n
		if got := w.metric(fmt.Sprintf(`domination_dead_lettered_total{agent=%q,reason=%q}`, agent, reason)); got != float64(n) {
			t.Errorf("metric domination_dead_lettered_total{agent=%q,reason=%q} is %v, want %d", agent, reason, got, n)
		}
	}
	if got := w.metric(fmt.Sprintf(`domination_dead_lettered_total{agent=%q`, agent)); got != float64(total) {
		t.Errorf("the %s agent's dead-letter metrics add up to %v, want %d", agent, got, total)
	}
}

func checkReasons(t *testing.T, got, want map[string]int) {
	t.Helper()
	for reason, n := range want {
		if got[reason] != n {
			t.Errorf("%d inputs dead-lettered with reason %s, want %d", got[reason], reason, n)
		}
	}
	for reason, n := range got {
		if want[reason] == 0 {
			t.Errorf("%d inputs dead-lettered with unexpected reason %s", n, reason)
		}
	}
}

// Scenario 6, ratings: every kind of hostile rating is dead-lettered with
// its reason, the valid ratings around them all land, and the metrics count
// exactly what was injected.
func TestReliabilityHostileRatingsAreDeadLetteredWithTheirReasonAndTheRestLand(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker()
	const valid = 5000
	good := make([]kafka.Message, valid)
	for i := range good {
		id := fmt.Sprintf("valid-%d", i)
		good[i] = kafka.Message{Key: []byte(id), Value: []byte(fmt.Sprintf(`{"rating":%d,"unique_id":%q}`, i%100+1, id))}
	}
	msgs, want := mix(good, hostileRatings())
	bw := e.bigWriter(e.ratings)
	if err := bw.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce the hostile ratings: %v", err)
	}

	// A record stamped ten years ahead: Kafka 4 refuses it by default
	// (log.message.timestamp.after.max.ms is one hour), so it is never
	// accepted; a broker that accepts it makes it an input to account for.
	ahead := kafka.Message{Key: []byte("ahead"), Value: []byte(`{"rating":5,"unique_id":"ahead"}`), Time: time.Now().AddDate(10, 0, 0)}
	err := bw.WriteMessages(context.Background(), ahead)
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == 1 {
		err = werrs[0]
	}
	switch {
	case errors.Is(err, kafka.InvalidTimestamp):
		t.Logf("the broker refused a rating stamped ten years ahead: %v", err)
	case err == nil:
		want[string(badTimestamp)]++
	default:
		t.Fatalf("produce a rating stamped ten years ahead: %v", err)
	}

	checkHostile(t, w, agents.ShadowAgentName, "hostile-ratings", e.reconcileRatings(2*time.Minute), valid, want)
}

// checkHostile prints the scenario's line and checks that the valid inputs,
// and only they, landed, and that every bad one was dead-lettered with its
// reason, as agent's metrics count too.
func checkHostile(t *testing.T, w *worker, agent, scenario string, rep verify.Report, valid int, want map[string]int) {
	t.Helper()
	printScenario(t, scenario, rep)
	bad := 0
	for _, n := range want {
		bad += n
	}
	if rep.Landed != valid || rep.DeadLettered != bad {
		t.Errorf("%s: landed %d and dead-lettered %d, want %d valid inputs landed and %d bad ones dead-lettered", scenario, rep.Landed, rep.DeadLettered, valid, bad)
	}
	checkReasons(t, rep.Reasons, want)
	checkDeadLetterMetrics(t, w, agent, want)
}

// Scenario 6, visits: the same for the visits agents.
func TestReliabilityHostileVisitsAreDeadLetteredWithTheirReasonAndTheRestAreCounted(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	window := 2 * time.Second
	w := e.startWorker("--window", "2s", "--grace", "1s")
	const valid = 3000
	now := float64(time.Now().UnixMilli()) / 1000
	stores := []string{`"north"`, `"south"`, `null`}
	good := make([]kafka.Message, valid)
	for i := range good {
		good[i] = kafka.Message{Value: []byte(fmt.Sprintf(`{"id":"valid-%d","account_id":%d,"store_id":%s,"timestamp":%.3f}`, i, i%3+1, stores[i%3], now))}
	}
	msgs, want := mix(good, hostileVisits())
	if err := e.bigWriter(e.visits).WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce the hostile visits: %v", err)
	}
	checkHostile(t, w, agents.VisitsAgentName, "hostile-visits", e.reconcileVisits(window, 2*time.Minute), valid, want)
}

// Scenario 9: every value a user gives `query` is either rejected before
// anything reaches ClickHouse or bound as a value; the tables stay intact.
func TestReliabilityQueryInjectionIsRejectedOrBoundAndTablesStayIntact(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	e.startWorker("--window", "2s", "--grace", "1s")
	e.cli("produce", "ratings", "--count", "2000", "--seed", "9")
	const hostileStore = `n'); DROP TABLE shadow; --`
	now := float64(time.Now().UnixMilli()) / 1000
	var visits []kafka.Message
	for i := range 300 {
		store, _ := json.Marshal([]string{"north", hostileStore}[i%2])
		visits = append(visits, kafka.Message{Value: []byte(fmt.Sprintf(`{"id":"v-%d","account_id":1,"store_id":%s,"timestamp":%.3f}`, i, store, now))})
	}
	if err := e.writer(e.visits).WriteMessages(context.Background(), visits...); err != nil {
		t.Fatalf("produce visits: %v", err)
	}
	before := e.reconcileRatings(2 * time.Minute)
	if !before.OK() || before.Landed != 2000 {
		t.Fatalf("before the injection attempts: %s", before)
	}
	if vr := e.reconcileVisits(2*time.Second, 2*time.Minute); !vr.OK() {
		t.Fatalf("visits before the injection attempts: %s", vr)
	}
	tables := strings.Join(e.tables(), ",")
	windows := e.count("SELECT count() FROM active_visitors FINAL")

	payloads := []string{
		`' OR 1=1 --`, `'; DROP TABLE shadow; --`, `1) OR (1=1`, `\' OR 1=1 #`, "x`; DROP DATABASE " + e.database + "; --",
		`%' OR '%'='`, "1; SELECT * FROM system.users", "x\n'; DROP TABLE shadow; --", hostileStore,
	}
	rejected, bound := 0, 0
	for _, p := range payloads {
		for _, args := range [][]string{
			{"query", "shadow", "--since", p}, {"query", "shadow", "--until", p}, {"query", "shadow", "--type", p},
			{"query", "shadow", "--by", p}, {"query", "shadow", "--format", p}, {"query", "shadow", "--limit", p},
			{"query", "active-visitors", "--since", p}, {"query", "active-visitors", "--account-id", p},
			{"query", "active-visitors", "--format", "json", "--store-id", p},
			{"--clickhouse-database", p, "query", "shadow"},
		} {
			r := runEnv(t, time.Minute, e.environ(), append(e.args(), args...)...)
			if r.code != 0 {
				rejected++
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "domination: ") {
					t.Errorf("domination %q: stderr %q, want one 'domination: ' line", args, r.stderr)
				}
				continue
			}
			bound++
			if args[len(args)-2] != "--store-id" {
				t.Errorf("domination %q exited 0: the value was neither rejected nor a --store-id", args)
				continue
			}
			// A store id is a value: only rows of exactly that store.
			var rows []struct {
				Store *string `json:"store_id"`
				Count uint64  `json:"count"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
				t.Fatalf("query active-visitors --store-id %q printed %q: %v", p, r.stdout, err)
			}
			for _, row := range rows {
				if row.Store == nil || *row.Store != p {
					t.Errorf("--store-id %q returned a row of store %v", p, row.Store)
				}
			}
			if p == hostileStore && len(rows) == 0 {
				t.Errorf("--store-id %q found none of its 150 visits", p)
			}
		}
	}
	t.Logf("%d attempts rejected, %d bound as values", rejected, bound)
	if got := strings.Join(e.tables(), ","); got != tables {
		t.Errorf("tables after the attempts: %s, before: %s", got, tables)
	}
	if got := e.count("SELECT count() FROM active_visitors FINAL"); got != windows {
		t.Errorf("active_visitors holds %d windows after the attempts, %d before", got, windows)
	}
	rep := e.reconcileRatings(time.Minute)
	printScenario(t, "query-injection", rep)
	if rep.Landed != 2000 {
		t.Errorf("landed %d after the attempts, want 2000", rep.Landed)
	}
}
