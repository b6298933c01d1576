package dlq

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

func TestParseRangeReadsOneOffsetARangeOrAnOpenEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Range
		err  string
	}{
		{in: "0/17", want: Range{0, 17, 17}},
		{in: "2/10-20", want: Range{2, 10, 20}},
		{in: " 1/5- ", want: Range{1, 5, -1}},
		{in: "17", err: "no '/'"},
		{in: "x/1", err: "partition"},
		{in: "-1/1", err: "partition"},
		{in: "0/", err: "offset"},
		{in: "0/-3", err: "offset"},
		{in: "0/9-3", err: "end"},
		{in: "0/3-x", err: "end"},
	} {
		got, err := ParseRange(tc.in)
		testenv.CheckErr(t, "ParseRange("+tc.in+")", err, tc.err)
		if err == nil && got != tc.want {
			t.Errorf("ParseRange(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if err == nil {
			if again, _ := ParseRange(got.String()); again != got {
				t.Errorf("ParseRange(%q).String() = %q does not read back", tc.in, got.String())
			}
		}
	}
}

func TestSelectionMatchesEveryFieldItSets(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rec := Record{Partition: 1, Offset: 7, Reason: "out_of_range", Time: at}
	for _, tc := range []struct {
		name string
		sel  Selection
		want bool
	}{
		{"empty", Selection{}, true},
		{"reason", Selection{Reasons: []string{"malformed_json", "out_of_range"}}, true},
		{"other reason", Selection{Reasons: []string{"malformed_json"}}, false},
		{"since is inclusive", Selection{Since: at}, true},
		{"since after", Selection{Since: at.Add(time.Second)}, false},
		{"until is exclusive", Selection{Until: at}, false},
		{"until after", Selection{Until: at.Add(time.Second)}, true},
		{"range", Selection{Ranges: []Range{{0, 0, -1}, {1, 5, 7}}}, true},
		{"open range", Selection{Ranges: []Range{{1, 7, -1}}}, true},
		{"range before", Selection{Ranges: []Range{{1, 0, 6}}}, false},
		{"other partition", Selection{Ranges: []Range{{0, 0, -1}}}, false},
		{"all but one", Selection{Reasons: []string{"out_of_range"}, Since: at, Ranges: []Range{{2, 0, -1}}}, false},
	} {
		if got := tc.sel.Match(rec); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSelectionBoundsReadOnlyTheOffsetsItsRangesCover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ranges   []Range
		from, to int64
		ok       bool
	}{
		{"no ranges: the whole partition", nil, 10, 100, true},
		{"one offset", []Range{{0, 17, 17}}, 17, 18, true},
		{"two ranges: their hull", []Range{{0, 20, 30}, {0, 12, 14}, {1, 0, -1}}, 12, 31, true},
		{"open end", []Range{{0, 50, -1}}, 50, 100, true},
		{"before the first offset", []Range{{0, 0, 5}}, 0, 0, false},
		{"past the end", []Range{{0, 100, -1}}, 0, 0, false},
		{"other partition", []Range{{1, 0, -1}}, 0, 0, false},
	} {
		from, to, ok := Selection{Ranges: tc.ranges}.bounds(0, 10, 100)
		if ok != tc.ok || (ok && (from != tc.from || to != tc.to)) {
			t.Errorf("%s: bounds = [%d, %d) %v, want [%d, %d) %v", tc.name, from, to, ok, tc.from, tc.to, tc.ok)
		}
	}
}

func TestSelectionValidateRejectsAnEmptyTimeRange(t *testing.T) {
	at := time.Now()
	testenv.CheckErr(t, "until before since", Selection{Since: at, Until: at}.Validate(), "must be after")
	testenv.CheckErr(t, "empty reason", Selection{Reasons: []string{""}}.Validate(), "empty reason")
	testenv.CheckErr(t, "a range", Selection{Since: at, Until: at.Add(time.Minute)}.Validate(), "")
}

// deadLetterOf is what the agents write for an input refused for reason.
func deadLetterOf(in kafka.Message, reason string) kafka.Message {
	headers := append([]kafka.Header{}, in.Headers...)
	headers = append(headers,
		kafka.Header{Key: wire.HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: wire.HeaderDetail, Value: []byte("detail of " + reason)},
		kafka.Header{Key: wire.HeaderAgent, Value: []byte("shadow")},
		kafka.Header{Key: wire.HeaderTopic, Value: []byte(in.Topic)},
		kafka.Header{Key: wire.HeaderPartition, Value: []byte("3")},
		kafka.Header{Key: wire.HeaderOffset, Value: []byte("41")},
		kafka.Header{Key: wire.HeaderTimestamp, Value: []byte("1700000000123")},
	)
	return kafka.Message{Topic: "dominate-dlq", Partition: 0, Offset: 9, Key: in.Key, Value: in.Value, Headers: headers, Time: time.Unix(1_800_000_000, 0)}
}

func TestReplayRestoresTheInputAndMarksTheReplay(t *testing.T) {
	in := kafka.Message{Topic: "dominate", Key: []byte("u-1"), Value: []byte(`{"rating":101,"unique_id":"u-1"}`),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}}}
	r := FromMessage(deadLetterOf(in, "out_of_range"))
	if r.Reason != "out_of_range" || r.Origin != "dominate" || r.OriginPartition != 3 || r.OriginOffset != 41 || r.Agent != "shadow" {
		t.Fatalf("decoded %+v", r)
	}
	if want := time.UnixMilli(1700000000123); !r.Time.Equal(want) {
		t.Errorf("time %s, want dlq.timestamp %s, not the dead letter's own time", r.Time, want)
	}
	m := r.Replay()
	if m.Topic != "dominate" || m.Partition != 3 || string(m.Key) != "u-1" || string(m.Value) != string(in.Value) || !m.Time.Equal(r.Time) {
		t.Errorf("replay = %s/%d %q %q at %s", m.Topic, m.Partition, m.Key, m.Value, m.Time)
	}
	if len(m.Headers) != 2 || m.Headers[0].Key != "trace" || wire.HeaderValue(m.Headers, HeaderReplayedFrom) != "dominate-dlq/0/9" {
		t.Errorf("replay headers %v, want the input's then %s", m.Headers, HeaderReplayedFrom)
	}

	// Refused again and replayed again: the latest refusal counts, and the
	// replay carries one marker, naming the latest dead letter.
	again := deadLetterOf(m, "malformed_json")
	again.Offset = 12
	r2 := FromMessage(again)
	if r2.Reason != "malformed_json" {
		t.Errorf("reason %q, want the latest refusal's", r2.Reason)
	}
	m2 := r2.Replay()
	if len(m2.Headers) != 2 || wire.HeaderValue(m2.Headers, HeaderReplayedFrom) != "dominate-dlq/0/12" {
		t.Errorf("second replay headers %v", m2.Headers)
	}
}

func TestADeadLetterWithoutTimestampHeaderKeepsItsOwnTime(t *testing.T) {
	m := kafka.Message{Topic: "dlq", Time: time.Unix(1_700_000_000, 0), Headers: []kafka.Header{{Key: wire.HeaderTopic, Value: []byte("in")}}}
	r := FromMessage(m)
	if !r.Time.Equal(m.Time) || r.OriginPartition != -1 || r.OriginOffset != -1 || r.OriginID() != "in/?/?" {
		t.Errorf("decoded %+v", r)
	}
}

func TestReplayableRefusesARecordWithNowhereToGo(t *testing.T) {
	testenv.CheckErr(t, "no dlq.topic", replayable(Record{Topic: "d"}, "d"), "has no dlq.topic header")
	testenv.CheckErr(t, "into itself", replayable(Record{Topic: "d", Origin: "d"}, "d"), "dead-letter topic itself")
	testenv.CheckErr(t, "bad name", replayable(Record{Topic: "d", Origin: "a b"}, "d"), "not a valid Kafka topic name")
	testenv.CheckErr(t, "fine", replayable(Record{Topic: "d", Origin: "dominate"}, "d"), "")
}

func TestOriginBalancerKeepsThePartitionWhenItExists(t *testing.T) {
	b := originBalancer{}
	if p := b.Balance(kafka.Message{Partition: 2, Key: []byte("k")}, 0, 1, 2, 3); p != 2 {
		t.Errorf("partition %d, want the origin's 2", p)
	}
	hashed := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte("k")}, 0, 1)
	if p := b.Balance(kafka.Message{Partition: 5, Key: []byte("k")}, 0, 1); p != hashed {
		t.Errorf("partition %d, want the key's hash %d when the origin partition is gone", p, hashed)
	}
}
