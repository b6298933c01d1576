// Package metrics defines the Prometheus metrics a worker exports on
// /metrics. One Registry per worker process; agents take the labelled
// children they need once, at start, not per message.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric of a worker. The agents' vectors carry an
// "agent" label naming the agent (for example "shadow"); the live feed's
// metrics (Feed*, named domination_feed_*) carry none but the drop reason,
// a worker serving one feed.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	// Consumed counts input records read, by agent.
	Consumed *prometheus.CounterVec
	// Produced counts output records acknowledged by Kafka, by agent and
	// topic (dead-letter records included).
	Produced *prometheus.CounterVec
	// Committed counts input records whose offsets were committed, by agent.
	Committed *prometheus.CounterVec
	// DeadLettered counts input records sent to a dead-letter topic, by
	// agent and reason.
	DeadLettered *prometheus.CounterVec
	// Lag is the number of records between the last committed offset and
	// the partition's high watermark, by agent and partition.
	Lag *prometheus.GaugeVec
	// Batches observes the records per processed batch, by agent.
	Batches *prometheus.HistogramVec
	// ProduceErrors counts failed produce attempts that were retried, by
	// agent.
	ProduceErrors *prometheus.CounterVec
	// CommitErrors counts failed offset commits, by agent.
	CommitErrors *prometheus.CounterVec
	// Rebalances counts consumer group generations joined, by agent.
	Rebalances *prometheus.CounterVec
	// Partitions is the number of partitions this worker owns, by agent.
	Partitions *prometheus.GaugeVec
	// OpenWindows is the number of distinct visit ids held in open
	// windows, by agent: the windows' memory is 11 to 21 bytes each.
	OpenWindows *prometheus.GaugeVec

	// FeedClients is the number of WebSocket clients of the live feed.
	FeedClients prometheus.Gauge
	// FeedReceived counts the counts the feed read from its topic.
	FeedReceived prometheus.Counter
	// FeedInvalid counts the records of the feed's topic that are not
	// valid counts (skipped).
	FeedInvalid prometheus.Counter
	// FeedDuplicates counts re-emitted counts the feed did not send again.
	FeedDuplicates prometheus.Counter
	// FeedFramesSent counts the frames written to the feed's clients.
	FeedFramesSent prometheus.Counter
	// FeedHistoryErrors counts the feed's failed history reads.
	FeedHistoryErrors prometheus.Counter
	// FeedDropped counts the feed's clients closed or refused by the
	// server, by reason.
	FeedDropped *prometheus.CounterVec
}

// New creates the metrics in a new registry, with the Go runtime and process
// collectors beside them.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "domination", Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	m := &Metrics{
		Registry:      reg,
		Consumed:      f("consumed_total", "Input records read.", "agent"),
		Produced:      f("produced_total", "Output records acknowledged by Kafka.", "agent", "topic"),
		Committed:     f("committed_total", "Input records whose offsets were committed.", "agent"),
		DeadLettered:  f("dead_lettered_total", "Input records sent to a dead-letter topic.", "agent", "reason"),
		ProduceErrors: f("produce_errors_total", "Failed produce attempts (retried).", "agent"),
		CommitErrors:  f("commit_errors_total", "Failed offset commits.", "agent"),
		Rebalances:    f("rebalances_total", "Consumer group generations joined.", "agent"),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "domination", Name: "lag_records",
			Help: "Records between the committed offset and the high watermark.",
		}, []string{"agent", "partition"}),
		Partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "domination", Name: "partitions_owned",
			Help: "Partitions this worker owns.",
		}, []string{"agent"}),
		OpenWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "domination", Name: "open_window_ids",
			Help: "Distinct visit ids held in open windows.",
		}, []string{"agent"}),
		Batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "domination", Name: "batch_records",
			Help:    "Records per processed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"agent"}),
	}
	reg.MustRegister(m.Lag, m.Partitions, m.Batches, m.OpenWindows)
	m.newFeed()
	return m
}

// newFeed creates and registers the live feed's metrics.
func (m *Metrics) newFeed() {
	c := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "domination", Subsystem: "feed", Name: name, Help: help}
	}
	m.FeedClients = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "domination", Subsystem: "feed", Name: "clients",
		Help: "WebSocket clients connected to the live feed.",
	})
	m.FeedReceived = prometheus.NewCounter(c("counts_received_total", "Counts read from the active-visitors topic."))
	m.FeedInvalid = prometheus.NewCounter(c("counts_invalid_total", "Records of the active-visitors topic that are not valid counts (skipped)."))
	m.FeedDuplicates = prometheus.NewCounter(c("counts_duplicate_total", "Counts re-emitted with the same key, window and count as one still in the ring (not sent again)."))
	m.FeedFramesSent = prometheus.NewCounter(c("frames_sent_total", "Frames written to clients: live counts, history and error frames."))
	m.FeedHistoryErrors = prometheus.NewCounter(c("history_errors_total", "History reads from ClickHouse that failed (the client got the ring's history only)."))
	m.FeedDropped = prometheus.NewCounterVec(c("clients_dropped_total",
		"Clients closed or refused by the server, by reason: slow, read_limit, pong_timeout, origin, max_clients, scope."), []string{"reason"})
	m.Registry.MustRegister(m.FeedClients, m.FeedReceived, m.FeedInvalid, m.FeedDuplicates, m.FeedFramesSent, m.FeedHistoryErrors, m.FeedDropped)
}
