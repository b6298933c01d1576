package feed

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the feed's Prometheus metrics, all named domination_feed_*.
type metrics struct {
	clients       prometheus.Gauge
	received      prometheus.Counter
	invalid       prometheus.Counter
	duplicates    prometheus.Counter
	framesSent    prometheus.Counter
	historyErrors prometheus.Counter
	dropped       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "domination", Subsystem: "feed", Name: name, Help: help}
	}
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "domination", Subsystem: "feed", Name: "clients",
			Help: "WebSocket clients connected to the live feed.",
		}),
		received:      prometheus.NewCounter(opts("counts_received_total", "Counts read from the active-visitors topic.")),
		invalid:       prometheus.NewCounter(opts("counts_invalid_total", "Records of the active-visitors topic that are not valid counts (skipped).")),
		duplicates:    prometheus.NewCounter(opts("counts_duplicate_total", "Counts re-emitted with the same key, window and count as one still in the ring (not sent again).")),
		framesSent:    prometheus.NewCounter(opts("frames_sent_total", "Frames written to clients: live counts, history and error frames.")),
		historyErrors: prometheus.NewCounter(opts("history_errors_total", "History reads from ClickHouse that failed (the client got the ring's history only).")),
		dropped: prometheus.NewCounterVec(opts("clients_dropped_total",
			"Clients closed or refused by the server, by reason: slow, read_limit, pong_timeout, origin, max_clients, scope."), []string{"reason"}),
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.received, m.invalid, m.duplicates, m.framesSent, m.historyErrors, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register feed metrics: %w", err)
		}
	}
	return m, nil
}
