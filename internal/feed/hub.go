package feed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/domination/domination/metrics"
)

// Drop reasons, the values of the reason label of
// domination_feed_clients_dropped_total.
const (
	reasonSlow        = "slow"
	reasonReadLimit   = "read_limit"
	reasonPongTimeout = "pong_timeout"
	reasonOrigin      = "origin"
	reasonMaxClients  = "max_clients"
)

var dropReasons = []string{reasonSlow, reasonReadLimit, reasonPongTimeout, reasonOrigin, reasonMaxClients, reasonScope}

// WebSocket close codes the feed sends.
const (
	closeNormal    = 1000
	closeGoingAway = 1001
	closePolicy    = 1008
)

var (
	errHubClosed = errors.New("feed is shutting down")
	errHubFull   = errors.New("too many clients")
	errGone      = errors.New("client is gone")
)

// outItem is one entry of a client's send queue: one frame, or a batch of
// frames (a history followed by the live counts held while it was read).
type outItem struct {
	frame []byte
	batch [][]byte
}

// subscriber is the hub's view of a client: its filter and send queue.
type subscriber struct {
	// queue is written by the hub (without blocking) and by the client's
	// reader goroutine (error frames); the writer goroutine drains it.
	queue chan outItem
	// stop closes the client with a close code (0: no close frame) and
	// text. It must not block; it may be called more than once.
	stop func(code int, text string)

	// Guarded by hub.mu.
	filter  filter
	syncing bool       // a history is being read: live counts go to pending
	pending []liveItem // live counts held while syncing, in arrival order
	// seen holds the counts the last history took from ClickHouse that the
	// ring did not have: when the reader, behind ClickHouse, publishes one
	// of them later, it is not sent again. At most N entries; each goes
	// when matched, all at the next sync.
	seen map[windowKey]uint64
	gone bool // removed from the hub
}

type liveItem struct {
	c     Count
	frame []byte
}

// hub is the broadcaster: it owns the ring of recent counts and the set of
// subscribers, both under mu. publish never blocks on a client.
type hub struct {
	log     *slog.Logger
	m       *metrics.Metrics
	history History
	timeout time.Duration // for one History.Recent
	limits  hubLimits

	mu       sync.Mutex
	ring     *ring
	subs     map[*subscriber]struct{}
	reserved int  // slots taken by handlers, upgrading or connected
	closed   bool // shut down: no new clients
	handlers sync.WaitGroup
}

type hubLimits struct {
	maxClients int
	pending    int // live counts held per syncing client
}

func newHub(log *slog.Logger, m *metrics.Metrics, history History, ringSize int, timeout time.Duration, limits hubLimits) *hub {
	return &hub{
		log:     log,
		m:       m,
		history: history,
		timeout: timeout,
		limits:  limits,
		ring:    newRing(ringSize),
		subs:    map[*subscriber]struct{}{},
	}
}

// reserve takes a client slot before the upgrade; release gives it back
// when the handler ends.
func (h *hub) reserve() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errHubClosed
	}
	if h.reserved >= h.limits.maxClients {
		return errHubFull
	}
	h.reserved++
	h.handlers.Add(1)
	return nil
}

func (h *hub) release() {
	h.mu.Lock()
	h.reserved--
	h.mu.Unlock()
	h.handlers.Done()
}

// add registers s, which receives nothing until its first sync.
func (h *hub) add(s *subscriber) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errHubClosed
	}
	s.syncing = true // hold live counts until the first history is out
	h.subs[s] = struct{}{}
	h.m.FeedClients.Set(float64(len(h.subs)))
	return nil
}

// remove unregisters s, counting reason if it is a drop reason ("" for a
// client that left), and stops it with code and text. Removing a gone
// subscriber does nothing.
func (h *hub) remove(s *subscriber, reason string, code int, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s, reason, code, text)
}

func (h *hub) removeLocked(s *subscriber, reason string, code int, text string) {
	if s.gone {
		return
	}
	s.gone = true
	s.pending = nil
	delete(h.subs, s)
	h.m.FeedClients.Set(float64(len(h.subs)))
	if reason != "" {
		h.m.FeedDropped.WithLabelValues(reason).Inc()
	}
	s.stop(code, text)
}

// clients is the number of connected clients.
func (h *hub) clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// shutdown refuses new clients, closes every client with 1001 and waits for
// their handlers to end.
func (h *hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for s := range h.subs {
		h.removeLocked(s, "", closeGoingAway, "going away")
	}
	h.mu.Unlock()
	h.handlers.Wait()
}

// publish records c in the ring and queues it for every client whose filter
// matches. A count identical to one the ring holds (same key, window and
// count: a re-emission after a restart) is not sent again. A client whose
// queue is full is dropped; publish never waits for a client.
func (h *hub) publish(c Count) {
	frame := c.frame()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ring.put(c) == putDuplicate {
		h.m.FeedDuplicates.Inc()
		return
	}
	k := c.key()
	for s := range h.subs {
		if !s.filter.match(c) {
			continue
		}
		if cnt, ok := s.seen[k]; ok {
			delete(s.seen, k)
			if cnt == c.Count {
				continue // sent in the history, from ClickHouse
			}
		}
		if s.syncing {
			if len(s.pending) >= h.limits.pending {
				h.removeLocked(s, reasonSlow, closePolicy, "too slow")
				continue
			}
			s.pending = append(s.pending, liveItem{c, frame})
			continue
		}
		select {
		case s.queue <- outItem{frame: frame}:
		default:
			h.removeLocked(s, reasonSlow, closePolicy, "too slow")
		}
	}
}

// sync applies filter f to s and queues its history, the last n counts
// matching f, followed by the live counts that arrived meanwhile. The seam:
//
//  1. Under mu, s switches to f and starts holding its live counts
//     (syncing), and the ring's last n matching counts are copied. Every
//     count published before this point is in the ring (or older than its
//     horizon), every one after is held for s.
//  2. Without the lock, ClickHouse is asked for the last n matching counts.
//     It usually lags Kafka, but may hold counts published after step 1,
//     or, when this worker's reader is behind (replaying after a start),
//     counts the ring has not seen yet.
//  3. The two are merged, one count per key, the ring's winning, and the
//     last n kept.
//  4. Under mu, a history count also held live with the same count is left
//     out of the history: it follows live, in arrival order. The history
//     and all held counts are queued as one item, and s goes live. The
//     history counts that came from ClickHouse alone are remembered in
//     s.seen, so that the reader catching up does not send them twice.
//
// ClickHouse failing is logged and the ring's history alone is sent.
func (h *hub) sync(ctx context.Context, s *subscriber, f filter, n int) error {
	h.mu.Lock()
	if s.gone {
		h.mu.Unlock()
		return errGone
	}
	s.filter = f
	s.syncing = true
	s.pending = nil
	s.seen = nil
	recent := h.ring.recent(f, n)
	h.mu.Unlock()

	var stored []Count
	if h.history != nil && n > 0 {
		hctx, cancel := context.WithTimeout(ctx, h.timeout)
		var err error
		stored, err = recentFor(hctx, h.history, f, n)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.m.FeedHistoryErrors.Inc()
			h.log.Warn("history unavailable: sending the counts read from kafka only", "filter", f.String(), "err", err)
			stored = nil
		}
	}
	hist := mergeHistory(stored, recent, n)
	inRing := make(map[windowKey]struct{}, len(recent))
	for _, c := range recent {
		inRing[c.key()] = struct{}{}
	}
	frames := make([][]byte, len(hist))
	for i, c := range hist {
		frames[i] = c.frame()
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if s.gone {
		return errGone
	}
	live := make(map[windowKey]uint64, len(s.pending))
	for _, p := range s.pending {
		live[p.c.key()] = p.c.Count
	}
	batch := make([][]byte, 0, len(hist)+len(s.pending))
	for i, c := range hist {
		k := c.key()
		if cnt, ok := live[k]; ok {
			if cnt == c.Count {
				continue // follows live
			}
		} else if _, ok := inRing[k]; !ok {
			if s.seen == nil {
				s.seen = make(map[windowKey]uint64)
			}
			s.seen[k] = c.Count
		}
		batch = append(batch, frames[i])
	}
	for _, p := range s.pending {
		batch = append(batch, p.frame)
	}
	s.pending = nil
	s.syncing = false
	if len(batch) == 0 {
		return nil
	}
	select {
	case s.queue <- outItem{batch: batch}:
		return nil
	default:
		h.removeLocked(s, reasonSlow, closePolicy, "too slow")
		return errGone
	}
}

// send queues one frame for s (an error frame), dropping s if its queue is
// full.
func (h *hub) send(s *subscriber, frame []byte) {
	select {
	case s.queue <- outItem{frame: frame}:
	default:
		h.remove(s, reasonSlow, closePolicy, "too slow")
	}
}
