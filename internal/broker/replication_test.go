package broker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
)

func TestResolveDefaultsToThreeAndTwoOnAClusterAndOneAndOneElse(t *testing.T) {
	tests := []struct {
		name        string
		r           Replication
		brokers     int
		factor, isr int
		wantErr     string
	}{
		{"one broker", Replication{}, 1, 1, 1, ""},
		{"two brokers", Replication{}, 2, 1, 1, ""},
		{"three brokers", Replication{}, 3, 3, 2, ""},
		{"five brokers", Replication{}, 5, 3, 2, ""},
		{"factor given, min in-sync automatic", Replication{Factor: 2}, 3, 2, 1, ""},
		{"both given", Replication{Factor: 5, MinInSync: 3}, 5, 5, 3, ""},
		{"min in-sync given", Replication{MinInSync: 3}, 3, 3, 3, ""},
		{"factor above the live brokers", Replication{Factor: 3}, 2, 0, 0, "needs at least 3 live brokers, the cluster has 2"},
		{"automatic factor below a given min in-sync", Replication{MinInSync: 2}, 1, 0, 0, "exceeds the replication factor 1"},
		{"min in-sync above the factor", Replication{Factor: 2, MinInSync: 3}, 3, 0, 0, "every RequireAll write would fail"},
		{"negative", Replication{Factor: -1}, 3, 0, 0, "want 0 (automatic) or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, isr, err := tt.r.Resolve(tt.brokers)
			testenv.CheckErr(t, "Resolve", err, tt.wantErr)
			if err == nil && (f != tt.factor || isr != tt.isr) {
				t.Fatalf("Resolve(%d) = %d, %d; want %d, %d", tt.brokers, f, isr, tt.factor, tt.isr)
			}
		})
	}
}

func TestDurabilityIsWeakWhenOneReplicaMayAcknowledgeAlone(t *testing.T) {
	tests := []struct {
		d                TopicDurability
		weak, impossible bool
	}{
		{TopicDurability{Factor: 1, MinInSync: 1}, false, false},
		{TopicDurability{Factor: 3, MinInSync: 2}, false, false},
		{TopicDurability{Factor: 3, MinInSync: 1}, true, false},
		{TopicDurability{Factor: 2, MinInSync: 1}, true, false},
		{TopicDurability{Factor: 1, MinInSync: 2}, false, true},
		{TopicDurability{Factor: 3, MinInSync: 4}, false, true},
	}
	for _, tt := range tests {
		if got := tt.d.Weak() != ""; got != tt.weak {
			t.Errorf("%+v Weak() = %q, want weak %v", tt.d, tt.d.Weak(), tt.weak)
		}
		if got := tt.d.Impossible() != ""; got != tt.impossible {
			t.Errorf("%+v Impossible() = %q, want impossible %v", tt.d, tt.d.Impossible(), tt.impossible)
		}
	}
}

func TestPrepareTopicsCreatesWithTheResolvedMinInSyncAndChecksThem(t *testing.T) {
	cfg, c := testClient(t)
	name := testenv.Name(t, "repl")
	testenv.DeleteTopicsAtCleanup(t, c, name)
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	if err := cfg.PrepareTopics(ctx, c, log, Topic{Name: name, Partitions: 2}); err != nil {
		t.Fatalf("PrepareTopics: %v", err)
	}
	wantFactor, wantISR := defaultReplication(t, c)
	ds, err := Durability(ctx, c, name)
	if err != nil {
		t.Fatalf("Durability: %v", err)
	}
	if len(ds) != 1 || ds[0].Factor != wantFactor || ds[0].MinInSync != wantISR {
		t.Fatalf("Durability = %+v, want factor %d, min in-sync %d", ds, wantFactor, wantISR)
	}
	if strings.Contains(logs.String(), "weakens") {
		t.Fatalf("a topic with the default replication was reported weak:\n%s", logs.String())
	}
}

func TestCheckRefusesATopicThatNoRequireAllWriteCanReach(t *testing.T) {
	_, c := testClient(t)
	name := testenv.Name(t, "unreachable")
	testenv.DeleteTopicsAtCleanup(t, c, name)
	ctx := context.Background()
	// One more in-sync replica than the topic has: Kafka accepts the
	// setting, and then refuses every acks=all write.
	factor, _ := defaultReplication(t, c)
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: 1, ReplicationFactor: factor,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: minInSyncConfig, ConfigValue: "9"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[name]; err != nil {
		t.Fatal(err)
	}
	err = Check(ctx, c, slog.New(slog.DiscardHandler), name)
	testenv.CheckErr(t, "Check", err, name+": min.insync.replicas 9 exceeds its")
}

// defaultReplication returns the replication factor and minimum in-sync
// replicas that the zero Replication resolves to on c's cluster.
func defaultReplication(t *testing.T, c *kafka.Client) (factor, minInSync int) {
	t.Helper()
	md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	factor, minInSync, err = Replication{}.Resolve(len(md.Brokers))
	if err != nil {
		t.Fatal(err)
	}
	return factor, minInSync
}
