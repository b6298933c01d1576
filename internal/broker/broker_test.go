package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/tlsconfig"
)

func TestValidateReportsTheFirstSettingThatCannotWork(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"zero value uses the defaults", Config{}, ""},
		{"several brokers", Config{Brokers: []string{"k1:9092", "[::1]:9093"}}, ""},
		{"broker without port", Config{Brokers: []string{"k1:9092", "kafka"}}, `kafka broker "kafka": want host:port`},
		{"unknown sasl mechanism", Config{SASL: SASL{Mechanism: "GSSAPI", Username: "u"}}, `kafka sasl mechanism "GSSAPI" is not one of`},
		{"plain without username", Config{SASL: SASL{Mechanism: "PLAIN", Password: "p"}}, "kafka sasl PLAIN needs a username"},
		{"scram without username", Config{SASL: SASL{Mechanism: "SCRAM-SHA-512"}}, "kafka sasl SCRAM-SHA-512 needs a username"},
		{"mechanism in lower case with spaces", Config{SASL: SASL{Mechanism: " scram-sha-256 ", Username: "u"}}, ""},
		{"plain with username", Config{SASL: SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}, ""},
		{"tls cert without key", Config{TLS: tlsconfig.Config{CertFile: "c.pem"}}, "kafka tls: a client certificate needs both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate()", tt.cfg.WithDefaults().Validate(), tt.wantErr)
		})
	}
}

func TestValidateNeverPutsThePasswordInAnError(t *testing.T) {
	err := Config{SASL: SASL{Mechanism: "NOPE", Username: "u", Password: "s3cret"}}.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Validate() = %v, want an error without the password", err)
	}
}

// testClient returns the Config of the test Kafka and an admin client for it.
func testClient(t *testing.T) (Config, *kafka.Client) {
	t.Helper()
	cfg := Config{Brokers: testenv.KafkaBrokers(t)}
	c, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

func deleteGroupsAtCleanup(t *testing.T, c *kafka.Client, groups ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: groups}); err != nil {
			t.Errorf("delete groups %v: %v", groups, err)
		}
	})
}

// partitions returns the partition count of each topic that exists.
func partitions(t *testing.T, c *kafka.Client, topics ...string) map[string]int {
	t.Helper()
	md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tp := range md.Topics {
		if tp.Error == nil {
			out[tp.Name] = len(tp.Partitions)
		}
	}
	return out
}

func TestEnsureTopicsCreatesMissingTopicsWithTheirPartitions(t *testing.T) {
	_, c := testClient(t)
	a, b := testenv.Name(t, "a"), testenv.Name(t, "b")
	testenv.DeleteTopicsAtCleanup(t, c, a, b)
	ctx := context.Background()

	if err := EnsureTopics(ctx, c, Topic{Name: a, Partitions: 3}, Topic{Name: b}); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	// Partitions 0 means 1.
	want := map[string]int{a: 3, b: 1}
	if got := partitions(t, c, a, b); got[a] != want[a] || got[b] != want[b] {
		t.Fatalf("partitions = %v, want %v", got, want)
	}

	// Again, asking for other counts: no error, nothing changed.
	if err := EnsureTopics(ctx, c, Topic{Name: a, Partitions: 6}, Topic{Name: b, Partitions: 2}); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	if got := partitions(t, c, a, b); got[a] != want[a] || got[b] != want[b] {
		t.Fatalf("partitions after the second call = %v, want %v unchanged", got, want)
	}
}

func TestEnsureTopicsCreatesOnlyTheMissingOnes(t *testing.T) {
	_, c := testClient(t)
	old, fresh := testenv.Name(t, "old"), testenv.Name(t, "new")
	testenv.DeleteTopicsAtCleanup(t, c, old, fresh)
	ctx := context.Background()
	if err := EnsureTopics(ctx, c, Topic{Name: old, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, c, Topic{Name: old, Partitions: 5}, Topic{Name: fresh, Partitions: 4}); err != nil {
		t.Fatalf("EnsureTopics with one existing topic: %v", err)
	}
	if got := partitions(t, c, old, fresh); got[old] != 2 || got[fresh] != 4 {
		t.Fatalf("partitions = %v, want %s:2 %s:4", got, old, fresh)
	}
}

func TestEnsureTopicsRejectsAnInvalidNameBeforeAnyRequest(t *testing.T) {
	// A client of a closed port: any request would fail with a dial error.
	c, err := Config{Brokers: []string{testenv.ClosedAddr(t)}, DialTimeout: time.Second}.Client()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"has space", "slash/topic", "", ".", "..", strings.Repeat("x", 250), "ünïcode"} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			err := EnsureTopics(context.Background(), c, Topic{Name: "valid_first", Partitions: 1}, Topic{Name: name, Partitions: 1})
			want := ValidTopic(name)
			if want == nil {
				t.Fatalf("ValidTopic(%q) = nil, want an error", name)
			}
			if err == nil || err.Error() != want.Error() {
				t.Fatalf("EnsureTopics = %v, want the name error %v (and no request sent)", err, want)
			}
		})
	}
}

// produce writes n records to topic, spread over its partitions, through a
// writer with a transport of its own.
func produce(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		Transport:    &kafka.Transport{},
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// committed returns the group's committed offset per partition of topic
// (-1 where none).
func committed(t *testing.T, c *kafka.Client, group, topic string, parts int) map[int]int64 {
	t.Helper()
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// seededTopic creates a topic of parts partitions holding n records and
// checks that every partition's end is past its start, so that a committed 0
// is the earliest offset and not the latest.
func seededTopic(t *testing.T, cfg Config, c *kafka.Client, parts, n int) string {
	t.Helper()
	topic := testenv.Name(t, "seed")
	testenv.DeleteTopicsAtCleanup(t, c, topic)
	ctx := context.Background()
	if err := EnsureTopics(ctx, c, Topic{Name: topic, Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	produce(t, cfg.Brokers, topic, n)
	reqs := make([]kafka.OffsetRequest, parts)
	for i := range reqs {
		reqs[i] = kafka.LastOffsetOf(i)
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
		if p.LastOffset <= 0 {
			t.Fatalf("partition %d is empty after producing %d records round-robin", p.Partition, n)
		}
		total += p.LastOffset
	}
	if total != int64(n) {
		t.Fatalf("the partitions hold %d records, want %d", total, n)
	}
	return topic
}

// newGroupOnSeededTopic returns a client, a topic of 3 partitions holding
// 10 records, and the name of a group that has committed nothing yet,
// deleted when the test ends.
func newGroupOnSeededTopic(t *testing.T) (c *kafka.Client, topic, group string) {
	t.Helper()
	cfg, c := testClient(t)
	topic = seededTopic(t, cfg, c, 3, 10)
	group = testenv.Name(t, "g")
	deleteGroupsAtCleanup(t, c, group)
	return c, topic, group
}

func TestSeedGroupAtStartCommitsTheEarliestOffsetOfEveryPartition(t *testing.T) {
	c, topic, group := newGroupOnSeededTopic(t)
	ctx := context.Background()

	before := committed(t, c, group, topic, 3)
	for p, off := range before {
		if off >= 0 {
			t.Fatalf("new group has offset %d on partition %d before seeding", off, p)
		}
	}
	if err := SeedGroupAtStart(ctx, c, group, topic); err != nil {
		t.Fatalf("SeedGroupAtStart: %v", err)
	}
	want := map[int]int64{0: 0, 1: 0, 2: 0}
	if got := committed(t, c, group, topic, 3); !equal(got, want) {
		t.Fatalf("committed after seeding = %v, want %v", got, want)
	}
	// Seeding again is a no-op.
	if err := SeedGroupAtStart(ctx, c, group, topic); err != nil {
		t.Fatalf("second SeedGroupAtStart: %v", err)
	}
	if got := committed(t, c, group, topic, 3); !equal(got, want) {
		t.Fatalf("committed after seeding twice = %v, want %v", got, want)
	}
}

func TestSeedGroupAtStartLeavesAnExistingOffsetAlone(t *testing.T) {
	c, topic, group := newGroupOnSeededTopic(t)
	ctx := context.Background()

	res, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: 5}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("commit offset 5 on partition %d: %v", p.Partition, p.Error)
			}
		}
	}
	if err := SeedGroupAtStart(ctx, c, group, topic); err != nil {
		t.Fatalf("SeedGroupAtStart: %v", err)
	}
	want := map[int]int64{0: 5, 1: 0, 2: 0}
	if got := committed(t, c, group, topic, 3); !equal(got, want) {
		t.Fatalf("committed after seeding = %v, want %v (partition 0 kept, the others at their start)", got, want)
	}
}

func TestSeedGroupAtStartFailsForAMissingTopic(t *testing.T) {
	_, c := testClient(t)
	topic := testenv.Name(t, "absent")
	// In case the broker auto-creates topics on metadata requests.
	testenv.DeleteTopicsAtCleanup(t, c, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := SeedGroupAtStart(ctx, c, testenv.Name(t, "g"), topic)
	if err == nil || !strings.Contains(err.Error(), topic) {
		t.Fatalf("SeedGroupAtStart = %v, want an error naming %s", err, topic)
	}
}

func equal(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSpansGiveEveryPartitionItsStartAndItsEndAsked(t *testing.T) {
	cfg, c := testClient(t)
	const parts, n = 3, 30
	topic := seededTopic(t, cfg, c, parts, n)
	// One request naming a partition twice could report its end as its
	// start on some answers and not others: ask often.
	for range 25 {
		spans, err := Spans(context.Background(), c, topic, []int{2, 0, 1})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for i, s := range spans {
			if s.Partition != i || s.First != 0 || s.End <= 0 {
				t.Fatalf("span %d is %+v, want partition %d from 0 to its end", i, s, i)
			}
			total += s.End
		}
		if total != n {
			t.Fatalf("the spans hold %d records, want %d", total, n)
		}
	}
	_, err := Spans(context.Background(), c, topic, []int{0, 7})
	testenv.CheckErr(t, "a partition the topic lacks", err, "/7: [3] Unknown Topic Or Partition")
}
