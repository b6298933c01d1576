package agents

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
)

// The windower's design (event time, lateness, how its state survives
// crashes and rebalances, its memory) is in the package doc.

// windowKey identifies one window of one (account, store).
type windowKey struct {
	account int64
	store   string
	null    bool
	start   int64 // unix seconds
}

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
	windows map[windowKey]*window
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
	dead      map[Reason]prometheus.Counter
	open      prometheus.Gauge
	openIDs   int
	// stores interns the store ids of windowKey (see storeName).
	stores map[string]string
	log    *slog.Logger
}

func newWindower(cfg VisitsConfig, p stream.Partition, dead map[Reason]prometheus.Counter, open prometheus.Gauge, log *slog.Logger) *windower {
	w := &windower{
		cfg: cfg, size: cfg.Window.Milliseconds(), grace: cfg.Grace.Milliseconds(),
		windows: map[windowKey]*window{}, dead: dead, open: open, nextClose: math.MaxInt64,
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
	v, derr := decodeVisit(m.Value, time.Time{}, w.cfg.Limits)
	if derr != nil {
		w.dead[derr.Reason].Inc()
		out.Emit(deadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, m, derr.Reason, "repartitioned visit: "+derr.Detail, DefaultMaxDeadLetterBytes))
		return
	}
	ts := int64(math.Floor(v.ts * 1000))
	start := floorDiv(ts, w.size) * w.size
	end := start + w.size
	if m.Offset < w.replayUntil && end+w.grace <= w.replayMark {
		// Replayed, and its window had closed before the restart: already
		// counted in an emitted window, or already dead-lettered as late.
		return
	}
	if end+w.grace <= w.watermark {
		w.dead[ReasonLate].Inc()
		detail := fmt.Sprintf("visit at %s is for window [%s, %s), closed at event time %s",
			time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), time.UnixMilli(start).UTC().Format(time.RFC3339), time.UnixMilli(end).UTC().Format(time.RFC3339), time.UnixMilli(w.watermark).UTC().Format(time.RFC3339))
		out.Emit(deadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, m, ReasonLate, detail, DefaultMaxDeadLetterBytes))
		return
	}
	k := windowKey{account: v.account, start: start / 1000, null: v.store == nil}
	if v.store != nil {
		k.store = w.storeName(v.store)
	}
	win := w.windows[k]
	if win == nil {
		win = &window{first: m.Offset}
		w.windows[k] = win
		w.nextClose = min(w.nextClose, end+w.grace)
	}
	if win.ids.add(fnv64a(v.id)) {
		w.openIDs++
		w.open.Inc()
	}
	// Event time follows the visit, but never past the time it was re-keyed
	// (the record's timestamp): a visit stamped ahead counts in its window
	// without making anyone else's late.
	at := ts
	if rekeyed := m.Time.UnixMilli(); m.Time.After(minVisitTime) && rekeyed < at {
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
	var closing []windowKey
	w.nextClose = math.MaxInt64
	for k := range w.windows {
		if at := k.start*1000 + w.size + w.grace; at <= w.watermark {
			closing = append(closing, k)
		} else {
			w.nextClose = min(w.nextClose, at)
		}
	}
	sort.Slice(closing, func(i, j int) bool {
		a, b := closing[i], closing[j]
		if a.start != b.start {
			return a.start < b.start
		}
		if a.account != b.account {
			return a.account < b.account
		}
		if a.null != b.null {
			return !a.null
		}
		return a.store < b.store
	})
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
func (w *windower) countMessage(k windowKey, n int) kafka.Message {
	var store []byte
	if !k.null {
		store = []byte(k.store)
	}
	end := k.start + w.size/1000
	// Key and value share one buffer: the key, then the value.
	buf := make([]byte, 0, 16*len(store)+128)
	buf = appendGroupKey(buf, k.account, store)
	key := buf[:len(buf):len(buf)]
	v := buf[len(buf):]
	v = append(v, `{"account_id":`...)
	v = strconv.AppendInt(v, k.account, 10)
	v = append(v, `,"store_id":`...)
	v = appendStoreJSON(v, store)
	v = append(v, `,"window":[`...)
	v = strconv.AppendInt(v, k.start, 10)
	v = append(v, ',')
	v = strconv.AppendInt(v, end, 10)
	v = append(v, `],"count":`...)
	v = strconv.AppendInt(v, int64(n), 10)
	v = append(v, '}')
	return kafka.Message{Topic: w.cfg.OutputTopic, Key: key, Value: v, Time: time.Unix(end, 0)}
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
	out.Emit(refusedDeadLetter(w.cfg.DeadLetterTopic, WindowsAgentName, m, in, ReasonTooLarge, cause, 1<<10))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
