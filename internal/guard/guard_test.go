package guard

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/clickhouse"
)

func TestTrackWaitsSkipAfterAtTheSameOffsetWithRecordsWaiting(t *testing.T) {
	l := &leader{g: &Guard{cfg: Config{SkipAfter: 10 * time.Second}}, seen: map[stuckKey]*stuck{}}
	t0 := time.Unix(1700000000, 0)
	end := map[int]int64{0: 100, 1: 50, 2: 7}
	steps := []struct {
		at        time.Duration
		committed map[int]int64
		want      []int
	}{
		{0, map[int]int64{0: 10, 1: 50, 2: -1}, nil},               // 0 waits; 1 caught up; 2 has no offset yet
		{9 * time.Second, map[int]int64{0: 10, 1: 50, 2: -1}, nil}, // not long enough
		{10 * time.Second, map[int]int64{0: 10, 1: 50, 2: -1}, []int{0}},
		{11 * time.Second, map[int]int64{0: 11, 1: 40, 2: 3}, nil}, // 0 moved: starts over; 1 and 2 start waiting
		{20 * time.Second, map[int]int64{0: 11, 1: 40, 2: 3}, nil}, // 9s at those offsets
		{21 * time.Second, map[int]int64{0: 11, 1: 40, 2: 3}, []int{0, 1, 2}},
		{22 * time.Second, map[int]int64{0: 100, 1: 40, 2: 3}, []int{1, 2}}, // 0 caught up
	}
	for _, s := range steps {
		got := l.track("shadow", s.committed, end, t0.Add(s.at))
		if !slices.Equal(got, s.want) {
			t.Errorf("at +%s with %v: due %v, want %v", s.at, s.committed, got, s.want)
		}
	}
	if _, ok := l.seen[stuckKey{"shadow", 0}]; ok {
		t.Errorf("a caught-up partition is still tracked")
	}
}

func TestConfigValidate(t *testing.T) {
	tables := Tables(clickhouse.KafkaSource{}, "", "")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Brokers: []string{"k:9092"}, Tables: tables}, ""},
		{"off needs nothing", Config{Mode: ModeOff}, ""},
		{"bad mode", Config{Mode: "sometimes", Brokers: []string{"k:9092"}, Tables: tables}, `mode "sometimes"`},
		{"no brokers", Config{Tables: tables}, "no brokers"},
		{"no tables", Config{Brokers: []string{"k:9092"}}, "no tables"},
		{"dead letters into the topic read", Config{Brokers: []string{"k:9092"}, Tables: Tables(clickhouse.KafkaSource{}, "shadow", "")}, "the dead-letter topic is the topic it reads"},
		{"bad leader topic", Config{Brokers: []string{"k:9092"}, Tables: tables, LeaderTopic: "a b"}, "a b"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestTablesFollowTheKafkaSource(t *testing.T) {
	ts := Tables(clickhouse.KafkaSource{ShadowTopic: "s", ShadowGroup: "g", ActiveVisitorsTopic: "a", ActiveVisitorsGroup: "h"}, "s-dlq", "")
	if got := ts[0]; got.Topic != "s" || got.Group != "g" || got.DeadLetterTopic != "s-dlq" || got.Engine != "shadow_stream" || got.View != "shadow_consumer" || got.Errors != "shadow_errors" {
		t.Errorf("shadow table = %+v", got)
	}
	if got := ts[1]; got.Topic != "a" || got.Group != "h" || got.DeadLetterTopic != DefaultActiveVisitorsDeadLetterTopic || got.Engine != "active_visitors_stream" {
		t.Errorf("active visitors table = %+v", got)
	}
	if ts[0].Check([]byte(`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3}`)) != nil || ts[1].Check([]byte(`nope`)) == nil {
		t.Errorf("the tables do not check their topics' contracts")
	}
}
