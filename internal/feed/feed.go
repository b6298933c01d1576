package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/domination/domination/metrics"
)

// History reads the counts already stored (in ClickHouse) for a client's
// first frames.
type History interface {
	// Recent returns the last n counts, of one account when account is
	// not nil, one per (account, store, window start), oldest first.
	Recent(ctx context.Context, account *int64, n int) ([]Count, error)
}

// Pinger is implemented by a History whose store Ready checks, as
// NewClickHouseHistory's does.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Feed is the live WebSocket feed of active-visitor counts: it reads the
// counts topic (Run) and pushes every count to the clients of Handler.
type Feed struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics.Metrics
	history  History
	hub      *hub
	upgrader websocket.Upgrader
	health   health
	started  atomic.Bool
}

// New returns a Feed reading history from history (nil: clients get the
// counts read from Kafka since Run started only, and Ready checks Kafka
// alone) and counting in m's Feed metrics, the worker's (nil: a set of its
// own, served nowhere). It starts no goroutine: Run reads Kafka, Handler
// serves clients.
func New(cfg Config, history History, log *slog.Logger, m *metrics.Metrics) (*Feed, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New()
	}
	// Every reason is exported from the start, at zero.
	for _, r := range dropReasons {
		m.FeedDropped.WithLabelValues(r)
	}
	f := &Feed{cfg: cfg, log: log, m: m, history: history}
	f.hub = newHub(log, m, history, cfg.RingSize, cfg.HistoryTimeout, hubLimits{
		maxClients: cfg.MaxClients,
		pending:    cfg.RingSize,
	})
	f.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteTimeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		// The origin is checked before the upgrade, where a refusal can
		// be counted; see originAllowed.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return f, nil
}

// Clients returns the number of connected WebSocket clients.
func (f *Feed) Clients() int { return f.hub.clients() }

// Ready reports whether this worker can serve the feed: the Kafka reader
// has fetched successfully within Config.ReadyWindow (an idle topic counts
// when the last check found the reader caught up), and the History answers
// a ping when it is a Pinger. The error names what is failing.
func (f *Feed) Ready(ctx context.Context) error {
	var problems []string
	if err := f.health.check(time.Now(), f.cfg.ReadyWindow); err != nil {
		problems = append(problems, fmt.Sprintf("kafka %s: %v", f.cfg.Topic, err))
	}
	if p, ok := f.history.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("clickhouse: %v", err))
		}
	}
	if len(problems) > 0 {
		return errors.New("feed not ready: " + strings.Join(problems, "; "))
	}
	return nil
}
