package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/wire"
)

func TestEngineSettingsReadTheTopicAndGroupOfAKafkaTable(t *testing.T) {
	cases := []struct {
		full, topic, group string
	}{
		{"Kafka SETTINGS kafka_broker_list = '127.0.0.1:9092', kafka_topic_list = 'shadow', kafka_group_name = 'clickhouse-shadow', kafka_format = 'JSONEachRow', kafka_num_consumers = 1",
			"shadow", "clickhouse-shadow"},
		{"Kafka SETTINGS kafka_topic_list = 'a-b.c, other', kafka_group_name = 'g\\'1'", "a-b.c", "g'1"},
		{"Kafka('127.0.0.1:9092', 'x', 'y', 'JSONEachRow')", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		topic, group := engineSettings(c.full)
		if topic != c.topic || group != c.group {
			t.Errorf("engineSettings(%q) = %q, %q; want %q, %q", c.full, topic, group, c.topic, c.group)
		}
	}
}

func TestEventTimesDecodeWhatTheAgentsWrite(t *testing.T) {
	shadow := wire.AppendShadow(nil, wire.Classify(3), []byte("id-1"), 1700000000, 3)
	if got, ok := shadowEventTime(shadow); !ok || got.Unix() != 1700000000 {
		t.Errorf("shadowEventTime(%s) = %v, %v; want 1700000000", shadow, got, ok)
	}
	count := wire.AppendActiveVisitors(nil, wire.ActiveVisitors{AccountID: 1, Start: 1700000000, End: 1700000010, Count: 3})
	if got, ok := windowEndTime(count); !ok || got.Unix() != 1700000010 {
		t.Errorf("windowEndTime(%s) = %v, %v; want 1700000010", count, got, ok)
	}
	for _, bad := range []string{"", "not json", `{"type":"Bogus"}`, `{"emit_timestamp":"x"}`, "\xff\x00"} {
		if _, ok := shadowEventTime([]byte(bad)); ok {
			t.Errorf("shadowEventTime(%q) decoded", bad)
		}
	}
	for _, bad := range []string{"", `{"window":[1]}`, `{"window":"x"}`, `{"count":1}`} {
		if _, ok := windowEndTime([]byte(bad)); ok {
			t.Errorf("windowEndTime(%q) decoded", bad)
		}
	}
}

func stalledReport() Report {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	newest := since.Add(-time.Minute)
	return Report{
		At: since.Add(time.Minute), Stalled: true,
		Stages: []Stage{
			{Name: "agent:shadow", Kind: KindAgent, Topic: "dominate", Group: "domination-shadow", StallAfter: Duration(20 * time.Second),
				Partitions: []Partition{{Partition: 0, EndOffset: 5, CommittedOffset: 5}}},
			{Name: "clickhouse:shadow", Kind: KindClickHouse, Topic: "shadow", Group: "clickhouse-shadow", Lag: 7,
				StallAfter: Duration(20 * time.Second), Stalled: true, Stall: &Stall{Since: since, Partition: 2, Offset: 117},
				Partitions: []Partition{
					{Partition: 0, EndOffset: 10, CommittedOffset: 10},
					{Partition: 2, EndOffset: 124, CommittedOffset: 117, Lag: 7, WaitingSince: &since, Stalled: true},
				},
				Store: &Store{Table: "shadow", Rows: 1000, NewestEvent: &newest, ErrorsTable: "shadow_errors", ErrorsRows: 2, FreshnessSeconds: 60}},
		},
		DeadLetters: []DeadLetters{
			{Topic: "dominate-dlq", Exists: true, Total: 3, ByReason: map[string]int64{"malformed_json": 2, "out_of_range": 1}},
			{Topic: "shadow-dlq", ByReason: map[string]int64{}},
		},
	}
}

func TestTheTableNamesTheStalledTablePartitionAndOffset(t *testing.T) {
	var buf bytes.Buffer
	if err := stalledReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	// Compare with runs of spaces folded: column widths are the tabwriter's.
	out := strings.Join(strings.Fields(buf.String()), " ")
	for _, want := range []string{
		"STALLED: clickhouse:shadow (table shadow) stalled at partition 2 offset 117 since 2026-12-01T10:00:00Z",
		"YES: partition 2 offset 117",
		"STALLED since 2026-12-01T10:00:00Z",
		"dominate-dlq malformed_json 2",
		"shadow-dlq (no such topic) 0",
		"shadow 1000 2026-12-01T09:59:00Z - 1m0s shadow_errors 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	ok := stalledReport()
	ok.Stalled, ok.Stages = false, ok.Stages[:1]
	buf.Reset()
	if err := ok.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "no stage is stalled") {
		t.Errorf("a report without a stall does not say so:\n%s", buf.String())
	}
}

func TestAReportSurvivesJSON(t *testing.T) {
	in := stalledReport()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"stall_after":"20s"`, `"stalled":true`, `"committed_offset":117`, `"freshness_seconds":60`, `"by_reason":{"malformed_json":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var out Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.StalledStages(); len(got) != 1 || got[0].Describe() != in.Stages[1].Describe() {
		t.Errorf("after a round trip the stalled stages are %+v", got)
	}
}
