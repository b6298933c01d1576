package worker

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/web"
)

func TestValidateRejectsBadTopicsPortsAndBrokers(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"zero value uses the defaults", Config{}, ""},
		{"custom valid topics", Config{
			Shadow: agents.ShadowConfig{InputTopic: "in.ratings", OutputTopic: "out_shadow", DeadLetterTopic: "dlq-1"},
			Visits: agents.VisitsConfig{InputTopic: "v", RepartitionTopic: "v.rk", OutputTopic: "av", DeadLetterTopic: "v.dlq"},
		}, ""},
		{"shadow input topic", Config{Shadow: agents.ShadowConfig{InputTopic: "bad topic"}}, `shadow agent: "bad topic" is not a valid Kafka topic name`},
		{"shadow output topic", Config{Shadow: agents.ShadowConfig{OutputTopic: "a/b"}}, `shadow agent: "a/b" is not a valid Kafka topic name`},
		{"shadow dead-letter topic", Config{Shadow: agents.ShadowConfig{DeadLetterTopic: ".."}}, `shadow agent: ".." is not a valid Kafka topic name`},
		{"visits input topic", Config{Visits: agents.VisitsConfig{InputTopic: "visits!"}}, `visits agent: "visits!" is not a valid Kafka topic name`},
		{"visits repartition topic", Config{Visits: agents.VisitsConfig{RepartitionTopic: strings.Repeat("r", 250)}}, "visits agent: "},
		{"visits output topic", Config{Visits: agents.VisitsConfig{OutputTopic: "ä"}}, `visits agent: "ä" is not a valid Kafka topic name`},
		{"web port too high", Config{Web: web.Config{Port: 65536}}, "web port 65536 is out of range"},
		{"web port negative", Config{Web: web.Config{Port: -1}}, "web port -1 is out of range"},
		{"kafka broker", Config{Kafka: broker.Config{Brokers: []string{"nohostport"}}}, `kafka broker "nohostport": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate()", tt.cfg.WithDefaults().Validate(), tt.wantErr)
			if tt.wantErr == "" {
				return
			}
			// New refuses the same config, before starting anything.
			if _, nerr := New(tt.cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); nerr == nil {
				t.Fatal("New accepted a config Validate rejects")
			}
		})
	}
}

func TestNewWriterRejectsAnInvalidKafkaConfig(t *testing.T) {
	_, err := NewWriter(broker.Config{SASL: broker.SASL{Mechanism: "PLAIN"}}, broker.ProducerConfig{})
	if err == nil || !strings.Contains(err.Error(), "needs a username") {
		t.Fatalf("NewWriter = %v, want the SASL username error", err)
	}
}
