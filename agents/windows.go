package agents

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/wire"
)

// The windower's design (event time, lateness, how its state survives
// crashes and rebalances, its memory) is in the package doc.

// Windows is the visits agent's second stage: it counts the repartition
// topic's visits in tumbling windows and emits each window's count to the
// active-visitors topic when it closes. NewVisits runs it beside the
// re-keying stage.
type Windows struct {
	runner *stream.Runner
}

// NewWindows builds the window stage; Run starts it.
func NewWindows(cfg VisitsConfig, rt Runtime) (*Windows, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dead := deadCounters(rt.Metrics, WindowsAgentName, VisitReasons)
	open := rt.Metrics.OpenWindows.WithLabelValues(WindowsAgentName)
	runner, err := rt.stage(WindowsAgentName, cfg.RepartitionTopic, cfg.GroupID+"-windows", cfg.Batching, func(p stream.Partition) stream.Processor {
		return newWindower(cfg, p, dead, open, rt.Log)
	})
	if err != nil {
		return nil, err
	}
	return &Windows{runner: runner}, nil
}

// Run counts until ctx ends, then drains and commits.
func (w *Windows) Run(ctx context.Context) error { return w.runner.Run(ctx) }

type window struct {
	ids   idSet
	first int64 // offset of the window's first record
}

// windower counts distinct visits per key in tumbling windows for one
// partition of the repartition topic.
type windower struct {
	cfg     VisitsConfig
	size    int64 // window size, ms
	grace   int64 // ms
	windows map[wire.WindowKey]*window
	// watermark is the partition's event time, unix ms; replayUntil (N) is
	// the offset up to which records were processed before this windower
	// started, and replayMark the watermark they had reached (W).
	watermark, replayMark int64
	replayUntil           int64
	next                  int64
	// nextClose is the earliest end + grace (ms) of any open window: the
	// open windows are scanned only when the watermark reaches it, not on
	// every visit that moves event time forward.
	nextClose int64
	dead      map[wire.Reason]prometheus.Counter
	open      prometheus.Gauge
	openIDs   int
	// stores interns the store ids of the window keys (see storeName).
	stores map[string]string
	log    *slog.Logger
}

func newWindower(cfg VisitsConfig, p stream.Partition, dead map[wire.Reason]prometheus.Counter, open prometheus.Gauge, log *slog.Logger) *windower {
	w := &windower{
		cfg: cfg, size: cfg.Window.Milliseconds(), grace: max(cfg.Grace, 0).Milliseconds(),
		windows: map[wire.WindowKey]*window{}, dead: dead, open: open, nextClose: math.MaxInt64,
		watermark: -1 << 62, replayMark: -1 << 62,
		log: log.With("agent", WindowsAgentName, "partition", p.ID),
	}
	if wm, next, ok := parseWindowMeta(p.Metadata); ok {
		w.watermark, w.replayMark, w.replayUntil = wm, wm, next
		w.log.Info("rebuilding windows", "from_offset", p.Offset, "replay_until", next, "watermark", time.UnixMilli(wm).UTC())
	} else if p.Metadata != "" {
		// Written by something else than this version: the state cannot be
		// rebuilt, and the counts of the windows open at the offset may
		// differ from a recomputation. Say so loudly.
		w.log.Error("commit metadata not understood; counting from the committed offset without the window state", "metadata", p.Metadata, "offset", p.Offset)
	}
	return w
}

// parseWindowMeta reads "v1 wm=<ms> next=<offset>".
func parseWindowMeta(s string) (wm, next int64, ok bool) {
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != "v1" || !strings.HasPrefix(f[1], "wm=") || !strings.HasPrefix(f[2], "next=") {
		return 0, 0, false
	}
	wm, err1 := strconv.ParseInt(f[1][3:], 10, 64)
	next, err2 := strconv.ParseInt(f[2][5:], 10, 64)
	return wm, next, err1 == nil && err2 == nil
}

// Process counts one visit of the repartition topic.
func (w *windower) Process(m *kafka.Message, out *stream.Output) {
	w.next = m.Offset + 1
	// The repartition topic's records were checked once already; the zero
	// time skips only the bounds against the visits record's timestamp.
	v, derr := wire.DecodeRepartitioned(m.Value, time.Time{}, w.cfg.Limits)
	if derr != nil {
		w.dead[derr.Reason].Inc()
		out.Emit(deadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, m, derr.Reason, "repartitioned visit: "+derr.Detail, DefaultMaxDeadLetterBytes))
		return
	}
	ts := int64(math.Floor(v.Timestamp * 1000))
	start := floorDiv(ts, w.size) * w.size
	end := start + w.size
	if m.Offset < w.replayUntil && end+w.grace <= w.replayMark {
		// Replayed, and its window had closed before the restart: already
		// counted in an emitted window, or already dead-lettered as late.
		return
	}
	if end+w.grace <= w.watermark {
		w.dead[wire.ReasonLate].Inc()
		detail := fmt.Sprintf("visit at %s is for window [%s, %s), closed at event time %s",
			time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), time.UnixMilli(start).UTC().Format(time.RFC3339), time.UnixMilli(end).UTC().Format(time.RFC3339), time.UnixMilli(w.watermark).UTC().Format(time.RFC3339))
		// The dead-letter topic holds visits as the visits topic has them,
		// in JSON, whichever form the repartition topic carries.
		late := *m
		late.Value = wire.AppendRepartitionedJSON(nil, v)
		out.Emit(deadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, &late, wire.ReasonLate, detail, DefaultMaxDeadLetterBytes))
		return
	}
	k := wire.WindowKey{AccountID: v.AccountID, Start: start / 1000, HasStore: v.StoreID != nil}
	if v.StoreID != nil {
		k.Store = w.storeName(v.StoreID)
	}
	win := w.windows[k]
	if win == nil {
		win = &window{first: m.Offset}
		w.windows[k] = win
		w.nextClose = min(w.nextClose, end+w.grace)
	}
	if win.ids.add(fnv64a(v.ID)) {
		w.openIDs++
		w.open.Inc()
	}
	// Event time follows the visit, but never past the time it was re-keyed
	// (the record's timestamp): a visit stamped ahead counts in its window
	// without making anyone else's late.
	at := ts
	if rekeyed := m.Time.UnixMilli(); m.Time.After(minTime) && rekeyed < at {
		at = rekeyed
	}
	if at > w.watermark {
		w.watermark = at
		if w.watermark >= w.nextClose {
			w.closeUpTo(out)
		}
	}
}

// Close releases the open windows and their share of the open-ids gauge
// when the partition is revoked or the worker stops.
func (w *windower) Close() {
	w.open.Sub(float64(w.openIDs))
	w.openIDs = 0
	w.windows = nil
}

// storeName returns store as a string, the same string for the same bytes,
// so that looking up a window allocates nothing. The table is dropped when
// it holds many more stores than there are open windows.
func (w *windower) storeName(store []byte) string {
	if s, ok := w.stores[string(store)]; ok {
		return s
	}
	if w.stores == nil || len(w.stores) > 2*len(w.windows)+1024 {
		w.stores = map[string]string{}
	}
	s := string(store)
	w.stores[s] = s
	return s
}

// fnv64a is the 64-bit FNV-1a hash of s, without hash.Hash's allocation.
func fnv64a[S string | []byte](s S) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Tick advances event time with the wall clock on an idle, caught-up
// partition, so that a quiet key's window is still reported.
func (w *windower) Tick(now time.Time, out *stream.Output) {
	if ms := now.UnixMilli(); ms > w.watermark {
		w.watermark = ms
		if w.watermark >= w.nextClose {
			w.closeUpTo(out)
		}
	}
}

// closeUpTo emits and forgets every window whose end + grace the watermark
// has reached, oldest first.
func (w *windower) closeUpTo(out *stream.Output) {
	var closing []wire.WindowKey
	w.nextClose = math.MaxInt64
	for k := range w.windows {
		if at := k.Start*1000 + w.size + w.grace; at <= w.watermark {
			closing = append(closing, k)
		} else {
			w.nextClose = min(w.nextClose, at)
		}
	}
	slices.SortFunc(closing, wire.CompareWindowKeys)
	for _, k := range closing {
		win := w.windows[k]
		out.Emit(w.countMessage(k, win.ids.len()))
		w.openIDs -= win.ids.len()
		w.open.Sub(float64(win.ids.len()))
		delete(w.windows, k)
	}
}

// countMessage is the active-visitors record of a closed window: a pure
// function of the key, the window and the count.
func (w *windower) countMessage(k wire.WindowKey, n int) kafka.Message {
	c := wire.ActiveVisitors{AccountID: k.AccountID, Start: k.Start, End: k.Start + w.size/1000, Count: uint64(n)}
	var store []byte
	if k.HasStore {
		c.StoreID = &k.Store
		store = []byte(k.Store)
	}
	// Key and value share one buffer: the key, then the value.
	buf := make([]byte, 0, 16*len(k.Store)+128)
	buf = wire.AppendGroupKey(buf, k.AccountID, store)
	key := buf[:len(buf):len(buf)]
	v := wire.AppendActiveVisitors(buf[len(buf):], c)
	return kafka.Message{Topic: w.cfg.OutputTopic, Key: key, Value: v, Time: time.Unix(c.End, 0)}
}

// Commit keeps every record of every open window uncommitted, and stores
// the watermark and the next offset as metadata.
func (w *windower) Commit(next int64) (int64, string) {
	offset := next
	for _, win := range w.windows {
		offset = min(offset, win.first)
	}
	return offset, fmt.Sprintf("v1 wm=%d next=%d", w.watermark, max(next, w.replayUntil))
}

// Rejected dead-letters an output Kafka refused for good. A refused window
// count is dead-lettered itself: the visit whose arrival closed the window
// is not at fault. A refused dead letter carries its late visit.
func (w *windower) Rejected(m kafka.Message, in *kafka.Message, cause error, out *stream.Output) {
	w.log.Error("output refused by kafka; dead-lettering it", "topic", m.Topic, "err", cause)
	if m.Topic != w.cfg.DeadLetterTopic {
		in = nil
	}
	out.Emit(refusedDeadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, m, in, wire.ReasonTooLarge, cause, 1<<10))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
