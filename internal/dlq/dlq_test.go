package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// world is one test's topics on the real broker: an input topic with 4
// partitions and a dead-letter topic with 2.
type world struct {
	t      *testing.T
	cfg    Config
	client *kafka.Client
	input  string
	d      *DLQ
}

func newWorld(t *testing.T) *world {
	t.Helper()
	base := testenv.Name(t, "dlq")
	w := &world{t: t, input: base + "-in"}
	w.cfg = Config{Topic: base + "-dlq", Kafka: broker.Config{Brokers: testenv.KafkaBrokers(t)}, BatchSize: 3}
	c, err := w.cfg.Kafka.Client()
	if err != nil {
		t.Fatal(err)
	}
	w.client = c
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := broker.EnsureTopics(ctx, c, broker.Topic{Name: w.input, Partitions: 4}, broker.Topic{Name: w.cfg.Topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{w.input, w.cfg.Topic}})
	})
	if w.d, err = New(w.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.d.Close)
	return w
}

// deadLetter is a dead letter as the agents write it, for input number i
// of w.input, refused for reason, on partition part of the dead-letter
// topic. Its input was stamped at stamp.
func (w *world) deadLetter(i int, reason string, part int, stamp time.Time, extra ...kafka.Header) kafka.Message {
	headers := append([]kafka.Header{{Key: "trace", Value: []byte("t" + strconv.Itoa(i))}}, extra...)
	headers = append(headers,
		kafka.Header{Key: wire.HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: wire.HeaderDetail, Value: []byte("because")},
		kafka.Header{Key: wire.HeaderAgent, Value: []byte(agents.ShadowAgentName)},
		kafka.Header{Key: wire.HeaderTopic, Value: []byte(w.input)},
		kafka.Header{Key: wire.HeaderPartition, Value: []byte(strconv.Itoa(i % 4))},
		kafka.Header{Key: wire.HeaderOffset, Value: []byte(strconv.Itoa(100 + i))},
		kafka.Header{Key: wire.HeaderTimestamp, Value: []byte(strconv.FormatInt(stamp.UnixMilli(), 10))},
	)
	return kafka.Message{
		Partition: part, Key: []byte(fmt.Sprintf("u-%d", i)),
		Value:   []byte(fmt.Sprintf(`{"rating":%d,"unique_id":"u-%d"}`, 100+i, i)),
		Headers: headers, Time: stamp,
	}
}

// write appends msgs to the dead-letter topic, each on its Partition.
func (w *world) write(msgs ...kafka.Message) {
	w.t.Helper()
	wr := &kafka.Writer{
		Addr: kafka.TCP(w.cfg.Kafka.Brokers...), Topic: w.cfg.Topic, RequiredAcks: kafka.RequireAll,
		Balancer: originBalancer{}, BatchTimeout: time.Millisecond,
		Transport: &kafka.Transport{MetadataTTL: time.Second},
	}
	defer wr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := wr.WriteMessages(ctx, msgs...); err != nil {
		w.t.Fatalf("write dead letters: %v", err)
	}
}

// ids scans with sel and returns the records' "partition/offset".
func (w *world) ids(sel Selection) []string {
	w.t.Helper()
	var out []string
	err := w.d.Scan(context.Background(), sel, func(r Record) error {
		out = append(out, fmt.Sprintf("%d/%d", r.Partition, r.Offset))
		return nil
	})
	if err != nil {
		w.t.Fatalf("scan: %v", err)
	}
	return out
}

// inputs reads every record of the input topic.
func (w *world) inputs() []kafka.Message {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := New(Config{Topic: w.input, Kafka: w.cfg.Kafka})
	if err != nil {
		w.t.Fatal(err)
	}
	defer in.Close()
	var out []kafka.Message
	err = in.Scan(ctx, Selection{}, func(r Record) error {
		out = append(out, kafka.Message{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: r.Headers, Time: r.Time})
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestScanSelectsByReasonTimeAndOffset(t *testing.T) {
	w := newWorld(t)
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	w.write(
		w.deadLetter(0, "out_of_range", 0, t0),
		w.deadLetter(1, "malformed_json", 0, t0.Add(time.Minute)),
		w.deadLetter(2, "out_of_range", 0, t0.Add(2*time.Minute)),
		w.deadLetter(3, "out_of_range", 1, t0.Add(3*time.Minute)),
		w.deadLetter(4, "wrong_type", 1, t0.Add(4*time.Minute)),
	)
	for _, tc := range []struct {
		name string
		sel  Selection
		want []string
	}{
		{"everything, by partition then offset", Selection{}, []string{"0/0", "0/1", "0/2", "1/0", "1/1"}},
		{"one reason", Selection{Reasons: []string{"out_of_range"}}, []string{"0/0", "0/2", "1/0"}},
		{"a time range", Selection{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"0/1", "0/2"}},
		{"offsets", Selection{Ranges: []Range{{0, 1, -1}, {1, 1, 1}}}, []string{"0/1", "0/2", "1/1"}},
		{"all three", Selection{Reasons: []string{"out_of_range"}, Since: t0.Add(time.Second), Ranges: []Range{{0, 0, -1}}}, []string{"0/2"}},
		{"nothing", Selection{Reasons: []string{"bad_unique_id"}}, nil},
	} {
		if got := w.ids(tc.sel); !equal(got, tc.want) {
			t.Errorf("%s: scanned %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGetReadsOneRecordWithItsHeaders(t *testing.T) {
	w := newWorld(t)
	at := time.UnixMilli(1_790_000_000_250)
	w.write(w.deadLetter(0, "out_of_range", 1, at), w.deadLetter(1, "wrong_type", 1, at))
	r, err := w.d.Get(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reason != "wrong_type" || string(r.Key) != "u-1" || r.OriginID() != w.input+"/1/101" || !r.Time.Equal(at) {
		t.Errorf("got %s %q %s at %s", r.Reason, r.Key, r.OriginID(), r.Time)
	}
	if wire.HeaderValue(r.Headers, "trace") != "t1" {
		t.Errorf("headers %v lack the input's own", r.Headers)
	}
	_, err = w.d.Get(context.Background(), 1, 2)
	testenv.CheckErr(t, "offset past the end", err, "holds offsets 0 to 1, not 2")
	_, err = w.d.Get(context.Background(), 7, 0)
	testenv.CheckErr(t, "no such partition", err, "no partition 7")
}

func TestReplaySendsTheInputsBackWithTheirTimeAndHeadersTwiceAlike(t *testing.T) {
	w := newWorld(t)
	t0 := time.UnixMilli(1_790_000_000_000)
	var dead []kafka.Message
	for i := range 7 {
		dead = append(dead, w.deadLetter(i, "out_of_range", i%2, t0.Add(time.Duration(i)*time.Second)))
	}
	dead = append(dead, w.deadLetter(7, "malformed_json", 0, t0))
	w.write(dead...)

	var seen []string
	sum, err := w.d.Replay(context.Background(), Selection{Reasons: []string{"out_of_range"}}, ReplayOptions{
		OnRecord: func(r Record, m kafka.Message, skipped bool) { seen = append(seen, r.ID()) },
	})
	if err != nil {
		t.Fatalf("replay: %v (%s)", err, sum)
	}
	if sum.Selected != 7 || sum.Sent != 7 || sum.Acknowledged != 7 || sum.Skipped != 0 || sum.Topics[w.input] != 7 || len(seen) != 7 {
		t.Fatalf("summary %s, %d records reported, want 7 selected, sent and acknowledged", sum, len(seen))
	}
	got := w.inputs()
	if len(got) != 7 {
		t.Fatalf("input topic holds %d records, want 7", len(got))
	}
	for _, m := range got {
		var i int
		if _, err := fmt.Sscanf(string(m.Key), "u-%d", &i); err != nil {
			t.Fatalf("key %q", m.Key)
		}
		want := dead[i]
		if string(m.Value) != string(want.Value) || m.Partition != i%4 || !m.Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("replayed %q on partition %d at %s, want %q on %d at %s", m.Value, m.Partition, m.Time, want.Value, i%4, want.Time)
		}
		if wire.HeaderValue(m.Headers, "trace") != fmt.Sprintf("t%d", i) || wire.HeaderValue(m.Headers, wire.HeaderReason) != "" {
			t.Errorf("replayed headers %v: want the input's own, without the dlq.* ones", m.Headers)
		}
		if from := wire.HeaderValue(m.Headers, HeaderReplayedFrom); from != fmt.Sprintf("%s/%d/%d", w.cfg.Topic, i%2, i/2) {
			t.Errorf("%s = %q", HeaderReplayedFrom, from)
		}
	}

	// A second replay sends the same records again, byte for byte and with
	// the same timestamps: what makes the stores count each once.
	if _, err := w.d.Replay(context.Background(), Selection{Reasons: []string{"out_of_range"}}, ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	copies := map[string]int{}
	for _, m := range w.inputs() {
		copies[fmt.Sprintf("%d %s %q", m.Partition, m.Time.UTC(), m.Value)]++
	}
	if len(copies) != 7 {
		t.Errorf("%d distinct records after two replays, want 7 (each twice): %v", len(copies), copies)
	}
	for k, n := range copies {
		if n != 2 {
			t.Errorf("%s sent %d times, want 2", k, n)
		}
	}
}

func TestADryRunChecksAndCountsButSendsNothing(t *testing.T) {
	w := newWorld(t)
	w.write(w.deadLetter(0, "out_of_range", 0, time.Now()), w.deadLetter(1, "out_of_range", 1, time.Now()))
	n := 0
	sum, err := w.d.Replay(context.Background(), Selection{}, ReplayOptions{DryRun: true, OnRecord: func(Record, kafka.Message, bool) { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Selected != 2 || sum.Sent != 0 || sum.Acknowledged != 0 || sum.Topics[w.input] != 2 || !sum.DryRun || n != 2 {
		t.Errorf("dry run summary %s, %d records reported", sum, n)
	}
	if got := w.inputs(); len(got) != 0 {
		t.Errorf("a dry run sent %d records", len(got))
	}
}

func TestReplayRefusesBadRecordsAndMissingTopicsBeforeSendingAnything(t *testing.T) {
	w := newWorld(t)
	good := w.deadLetter(0, "out_of_range", 0, time.Now())
	orphan := w.deadLetter(1, "out_of_range", 0, time.Now())
	var kept []kafka.Header
	for _, h := range orphan.Headers {
		if h.Key != wire.HeaderTopic {
			kept = append(kept, h)
		}
	}
	orphan.Headers = kept
	elsewhere := w.deadLetter(2, "wrong_type", 1, time.Now())
	for i, h := range elsewhere.Headers {
		if h.Key == wire.HeaderTopic {
			elsewhere.Headers[i].Value = []byte(w.input + "-gone")
		}
	}
	w.write(good, orphan, elsewhere)

	sum, err := w.d.Replay(context.Background(), Selection{Reasons: []string{"out_of_range"}}, ReplayOptions{})
	testenv.CheckErr(t, "a record without dlq.topic", err, "nothing sent: dead letter "+w.cfg.Topic+"/0/1 has no dlq.topic header")
	if sum.Sent != 0 {
		t.Errorf("summary %s after a refusal", sum)
	}
	sum, err = w.d.Replay(context.Background(), Selection{Reasons: []string{"wrong_type"}}, ReplayOptions{DryRun: true})
	testenv.CheckErr(t, "a topic that does not exist", err, "nothing sent: 1 selected records name topic "+w.input+"-gone: no such topic")
	if !errors.Is(err, ErrNoTopic) || sum.Sent != 0 {
		t.Errorf("err %v, summary %s", err, sum)
	}
	if got := w.inputs(); len(got) != 0 {
		t.Errorf("refused replays sent %d records", len(got))
	}
	// The good record alone goes through.
	sum, err = w.d.Replay(context.Background(), Selection{Ranges: []Range{{0, 0, 0}}}, ReplayOptions{})
	if err != nil || sum.Acknowledged != 1 {
		t.Errorf("replay of the good record: %s, %v", sum, err)
	}
}

func TestReplaySkipsTruncatedRecordsAndSaysSo(t *testing.T) {
	w := newWorld(t)
	cut := w.deadLetter(0, "message_too_large", 0, time.Now(), kafka.Header{Key: wire.HeaderTruncated, Value: []byte("2000000")})
	w.write(cut, w.deadLetter(1, "message_too_large", 0, time.Now()))
	var skipped []string
	sum, err := w.d.Replay(context.Background(), Selection{}, ReplayOptions{OnRecord: func(r Record, _ kafka.Message, skip bool) {
		if skip {
			skipped = append(skipped, r.ID())
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Selected != 2 || sum.Skipped != 1 || sum.Acknowledged != 1 || !equal(skipped, []string{w.cfg.Topic + "/0/0"}) {
		t.Errorf("summary %s, skipped %v", sum, skipped)
	}
}

func TestAMissingDeadLetterTopicIsAnError(t *testing.T) {
	d, err := New(Config{Topic: testenv.Name(t, "none"), Kafka: broker.Config{Brokers: testenv.KafkaBrokers(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Scan(context.Background(), Selection{}, func(Record) error { return nil })
	if !errors.Is(err, ErrNoTopic) {
		t.Errorf("scan of a missing topic: %v, want ErrNoTopic", err)
	}
}
