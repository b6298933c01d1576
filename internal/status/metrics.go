package status

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gauges a Collector keeps current. Every name is part of
// the product's surface: dashboards and alert rules use them.
type metrics struct {
	lag       *prometheus.GaugeVec // table, partition
	freshness *prometheus.GaugeVec // table
	stalled   *prometheus.GaugeVec // table
	rows      *prometheus.GaugeVec // table
	errorRows *prometheus.GaugeVec // table
	stage     *prometheus.GaugeVec // stage
	ready     prometheus.Gauge

	// lagLabels are the (table, partition) pairs set last time, so that a
	// partition that is gone is deleted rather than left at its last value.
	lagLabels map[[2]string]bool
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "domination", Name: name, Help: help}, labels)
	}
	m := &metrics{
		lag:       g("clickhouse_lag_records", "Records of the topic that the Kafka engine's consumer group has not committed, by store and partition.", "table", "partition"),
		freshness: g("clickhouse_freshness_seconds", "Event time of the newest record on the topic minus that of the newest row in the store, at least 0.", "table"),
		stalled:   g("clickhouse_stalled", "1 when the Kafka engine has records waiting and has not committed for the stall time.", "table"),
		rows:      g("clickhouse_store_rows", "Rows in the store's active parts (unmerged re-deliveries count each time).", "table"),
		errorRows: g("clickhouse_errors_rows", "Records in the store's errors table.", "table"),
		stage:     g("stage_stalled", "1 when a stage (agent or Kafka engine group) has records waiting and has not committed for its stall time.", "stage"),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "domination", Name: "ready", Help: "1 when the worker's GET /ready answers 200.",
		}),
		lagLabels: map[[2]string]bool{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lag, m.freshness, m.stalled, m.rows, m.errorRows, m.stage, m.ready} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// update sets the gauges from r.
func (m *metrics) update(r Report) {
	seen := map[[2]string]bool{}
	for _, s := range r.Stages {
		m.stage.WithLabelValues(s.Name).Set(b2f(s.Stalled))
		if s.Kind != KindClickHouse || s.Store == nil {
			continue
		}
		table := s.Store.Table
		m.stalled.WithLabelValues(table).Set(b2f(s.Stalled))
		for _, p := range s.Partitions {
			k := [2]string{table, strconv.Itoa(p.Partition)}
			seen[k] = true
			m.lag.WithLabelValues(k[0], k[1]).Set(float64(p.Lag))
		}
		m.freshness.WithLabelValues(table).Set(s.Store.FreshnessSeconds)
		m.rows.WithLabelValues(table).Set(float64(s.Store.Rows))
		m.errorRows.WithLabelValues(table).Set(float64(s.Store.ErrorsRows))
	}
	for k := range m.lagLabels {
		if !seen[k] {
			m.lag.DeleteLabelValues(k[0], k[1])
		}
	}
	m.lagLabels = seen
	if r.Ready != nil {
		m.ready.Set(b2f(r.Ready.Ready))
	}
}
