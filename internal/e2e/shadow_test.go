package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// badInput is one kind of invalid rating and the reason it must be
// dead-lettered with.
type badInput struct {
	name   string
	value  func(i int) []byte
	reason wire.Reason
}

var badInputs = []badInput{
	{"truncated json", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating": 5, "unique_id": "bad-%d"`, i)) }, wire.ReasonMalformedJSON},
	{"binary garbage", func(i int) []byte { return []byte{0xff, 0x00, 0xfe, byte(i), 0x7b} }, wire.ReasonMalformedJSON},
	{"top-level array", func(i int) []byte { return []byte(fmt.Sprintf(`[%d]`, i)) }, wire.ReasonMalformedJSON},
	{"rating as string", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating":"5","unique_id":"bad-%d"}`, i)) }, wire.ReasonWrongType},
	{"rating 1e309", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating":1e309,"unique_id":"bad-%d"}`, i)) }, wire.ReasonWrongType},
	{"missing rating", func(i int) []byte { return []byte(fmt.Sprintf(`{"unique_id":"bad-%d"}`, i)) }, wire.ReasonMissingField},
	{"rating 0", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating":0,"unique_id":"bad-%d"}`, i)) }, wire.ReasonOutOfRange},
	{"rating 101", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating":101,"unique_id":"bad-%d"}`, i)) }, wire.ReasonOutOfRange},
	{"rating -1", func(i int) []byte { return []byte(fmt.Sprintf(`{"rating":-1,"unique_id":"bad-%d"}`, i)) }, wire.ReasonOutOfRange},
	{"empty id", func(int) []byte { return []byte(`{"rating":5,"unique_id":""}`) }, wire.ReasonBadID},
	{"10 KB id", func(int) []byte { return []byte(`{"rating":5,"unique_id":"` + strings.Repeat("x", 10<<10) + `"}`) }, wire.ReasonBadID},
	{"100 KB message", func(int) []byte {
		return []byte(`{"rating":5,"unique_id":"big","pad":"` + strings.Repeat("p", 100<<10) + `"}`)
	}, wire.ReasonTooLarge},
}

func TestShadowDeadLettersEveryKindOfBadInputAndKeepsTheRest(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker()

	const valid, invalid = 10000, 1000
	msgs := make([]kafka.Message, 0, valid+invalid)
	wantReasons := map[wire.Reason]int{}
	wantTypes := map[string]int{}
	v, b := 0, 0
	for v < valid || b < invalid {
		if b < invalid && (v >= valid || (v+b)%11 == 10) {
			kind := badInputs[b%len(badInputs)]
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("bad-%d", b)), Value: kind.value(b)})
			wantReasons[kind.reason]++
			b++
			continue
		}
		rating := int64(v%100) + 1
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf(`{"rating": %d, "unique_id": "valid-%d"}`, rating, v))})
		wantTypes[wire.Classify(rating).String()]++
		v++
	}
	if err := e.writer(e.ratings).WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce the mixed stream: %v", err)
	}

	testenv.WaitFor(t, "every valid rating in shadow", 90*time.Second, func() bool {
		return e.count("SELECT count() FROM shadow FINAL WHERE unique_id LIKE 'valid-%'") == valid
	})
	for typ, n := range wantTypes {
		if got := e.count("SELECT count() FROM shadow FINAL WHERE unique_id LIKE 'valid-%' AND type = ?", typ); got != uint64(n) {
			t.Errorf("shadow holds %d %s ratings, want %d", got, typ, n)
		}
	}
	if got := e.count("SELECT count() FROM shadow FINAL WHERE unique_id NOT LIKE 'valid-%'"); got != 0 {
		t.Errorf("shadow holds %d rows from invalid input", got)
	}

	gotReasons := map[wire.Reason]int{}
	for _, m := range e.readAll(e.dlq, invalid, time.Minute) {
		gotReasons[wire.Reason(wire.HeaderValue(m.Headers, wire.HeaderReason))]++
		if wire.HeaderValue(m.Headers, wire.HeaderTopic) != e.ratings || wire.HeaderValue(m.Headers, wire.HeaderOffset) == "" {
			t.Fatalf("dead letter without its origin: headers %v", m.Headers)
		}
	}
	for reason, n := range wantReasons {
		if gotReasons[reason] != n {
			t.Errorf("%d dead letters with reason %s, want %d", gotReasons[reason], reason, n)
		}
	}
	if got := w.metric(`domination_dead_lettered_total{agent="shadow"`); got != invalid {
		t.Errorf("metrics count %v dead letters, want %d", got, invalid)
	}
	for reason, n := range wantReasons {
		if got := w.metric(fmt.Sprintf(`domination_dead_lettered_total{agent="shadow",reason="%s"}`, reason)); got != float64(n) {
			t.Errorf("metric for %s is %v, want %d", reason, got, n)
		}
	}
	if err := w.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("worker did not stop cleanly: %v", err)
	}
	if !strings.Contains(w.logs.String(), "stopped cleanly") {
		t.Fatalf("worker log does not say it stopped cleanly:\n%s", w.logs.String())
	}
}

type kafkaMessage = kafka.Message

// readUpTo reads every record topic holds now; none if it does not exist.
func (e *env) readUpTo(topic string) []kafka.Message {
	e.t.Helper()
	return e.read(topic, -1, time.Minute)
}

// readAll reads every record of every partition of topic, from the start,
// and fails unless there are n.
func (e *env) readAll(topic string, n int, within time.Duration) []kafka.Message {
	e.t.Helper()
	return e.read(topic, n, within)
}

func (e *env) read(topic string, n int, within time.Duration) []kafka.Message {
	e.t.Helper()
	parts, err := e.partitions(topic)
	if err != nil && n < 0 {
		return nil
	}
	if err != nil {
		e.t.Fatalf("read partitions of %s: %v", topic, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []kafka.Message
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: topic, Partition: p.ID, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		// Read up to the partition's end as it is now.
		last, err := r.ReadLag(ctx)
		if err != nil {
			r.Close()
			e.t.Fatalf("lag of %s/%d: %v", topic, p.ID, err)
		}
		for i := int64(0); i < last; i++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				e.t.Fatalf("read %s/%d after %d records: %v", topic, p.ID, len(out), err)
			}
			out = append(out, m)
		}
		r.Close()
	}
	if n >= 0 && len(out) != n {
		e.t.Fatalf("%s holds %d records, want %d", topic, len(out), n)
	}
	return out
}
