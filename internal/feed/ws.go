package feed

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Handler serves the feed on GET /ws: a WebSocket per client.
//
// Before the upgrade it refuses a foreign Origin (403, see
// Config.AllowedOrigins), a bad ?history=N (400) and a client over
// Config.MaxClients or arriving after Run ended (503).
func (f *Feed) Handler() http.Handler { return http.HandlerFunc(f.serveWS) }

func (f *Feed) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if origin := r.Header.Get("Origin"); !originAllowed(origin, r.Host, f.cfg.AllowedOrigins) {
		f.m.FeedDropped.WithLabelValues(reasonOrigin).Inc()
		f.log.Info("feed client refused: origin not allowed", "origin", origin, "host", r.Host, "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	n, err := f.historyParam(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	scope, ok := scopeOf(r)
	if !ok {
		http.Error(w, "forbidden: this token covers no account", http.StatusForbidden)
		return
	}
	if err := f.hub.reserve(); err != nil {
		if errors.Is(err, errHubFull) {
			f.m.FeedDropped.WithLabelValues(reasonMaxClients).Inc()
			f.log.Warn("feed client refused: too many clients", "max", f.cfg.MaxClients, "remote", r.RemoteAddr)
		}
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer f.hub.release()
	conn, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has replied
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &client{
		f:          f,
		conn:       conn,
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		scope:      scope,
	}
	c.sub = &subscriber{queue: make(chan outItem, f.cfg.SendQueue), stop: c.stop}
	c.serve(n)
}

// historyParam reads ?history=N, 0..MaxHistory, HistoryWindows by default.
func (f *Feed) historyParam(q url.Values) (int, error) {
	s := q.Get("history")
	if s == "" {
		return f.cfg.HistoryWindows, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > f.cfg.MaxHistory {
		return 0, errors.New("history must be an integer from 0 to " + strconv.Itoa(f.cfg.MaxHistory))
	}
	return n, nil
}

// originAllowed reports whether a browser page from origin may connect to
// host. No Origin header (a CLI client) is allowed; so is the server's own
// host, and whatever allowed lists ("*" for all, a full origin, or a
// host[:port]).
func originAllowed(origin, host string, allowed []string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // "null" (sandboxed pages, file://) or garbage
		for _, a := range allowed {
			if a == "*" || strings.EqualFold(a, origin) {
				return true
			}
		}
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	full := u.Scheme + "://" + u.Host
	for _, a := range allowed {
		switch {
		case a == "*":
			return true
		case strings.Contains(a, "://"):
			if strings.EqualFold(strings.TrimRight(a, "/"), full) {
				return true
			}
		case strings.EqualFold(a, u.Host):
			return true
		}
	}
	return false
}

// client is one WebSocket connection: the handler's goroutine reads it
// (readLoop), a second goroutine writes it (writeLoop).
type client struct {
	f      *Feed
	conn   *websocket.Conn
	sub    *subscriber
	ctx    context.Context // ends when the client is stopped
	cancel context.CancelFunc

	once sync.Once
	done chan struct{} // closed by stop
	code int           // close code to send, 0 for none; set before done closes
	text string

	readerDone chan struct{}
	writerDone chan struct{}

	scope accountScope // the accounts the client's token covers; nil: all
}

// stop asks the writer to close the connection, sending a close frame with
// code and text unless code is 0. It never blocks.
func (c *client) stop(code int, text string) {
	c.once.Do(func() {
		c.code, c.text = code, text
		close(c.done)
		c.cancel()
	})
}

func (c *client) serve(n int) {
	if err := c.f.hub.add(c.sub); err != nil {
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeGoingAway, "going away"), time.Now().Add(c.f.cfg.WriteTimeout))
		_ = c.conn.Close()
		c.cancel()
		return
	}
	go c.writeLoop()
	c.readLoop(n)
	c.f.hub.remove(c.sub, "", 0, "")
	close(c.readerDone)
	<-c.writerDone
}

// readLoop sends the first history, then reads the client's messages until
// the connection fails or is closed.
func (c *client) readLoop(n int) {
	cfg := c.f.cfg
	c.conn.SetReadLimit(cfg.ReadLimit)
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	// The writer answers a client's close frame; gorilla's default handler
	// would write from this goroutine.
	c.conn.SetCloseHandler(func(int, string) error { return nil })

	_ = c.f.hub.sync(c.ctx, c.sub, filter{scope: c.scope}, n)
	for {
		// The history may have taken a while: the deadline counts from now.
		_ = c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.ctx.Err() != nil {
			continue // closing: wait for the client's close frame
		}
		if typ != websocket.TextMessage {
			c.f.hub.send(c.sub, errorFrame("binary messages are not supported"))
			continue
		}
		msg, err := parseClientMessage(data)
		if err != nil {
			c.f.hub.send(c.sub, errorFrame(err.Error()))
			continue
		}
		switch msg.kind {
		case msgClose:
			c.f.hub.remove(c.sub, "", closeNormal, "")
		case msgSetFilter:
			if !c.inScope(msg.filter) {
				continue
			}
			msg.filter.scope = c.scope
			_ = c.f.hub.sync(c.ctx, c.sub, msg.filter, n)
		}
	}
}

func (c *client) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent the 1009 close frame.
		c.f.log.Info("feed client dropped: message over the read limit", "limit", c.f.cfg.ReadLimit, "remote", c.conn.RemoteAddr().String())
		c.f.hub.remove(c.sub, reasonReadLimit, 0, "")
	case errors.As(err, &ce):
		c.f.hub.remove(c.sub, "", closeNormal, "")
	case isTimeout(err) && c.ctx.Err() == nil:
		c.f.log.Info("feed client dropped: no pong", "wait", c.f.cfg.PongWait, "remote", c.conn.RemoteAddr().String())
		c.f.hub.remove(c.sub, reasonPongTimeout, closePolicy, "pong timeout")
	default:
		c.f.hub.remove(c.sub, "", 0, "")
	}
}

// writeLoop writes the queued frames and the pings until the client is
// stopped, then closes the connection.
func (c *client) writeLoop() {
	defer close(c.writerDone)
	ping := time.NewTicker(c.f.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			c.finish()
			return
		default:
		}
		var err error
		select {
		case <-c.done:
			c.finish()
			return
		case it := <-c.sub.queue:
			err = c.write(it)
		case <-ping.C:
			err = c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.f.cfg.WriteTimeout))
		}
		if err != nil {
			reason := ""
			if isTimeout(err) {
				reason = reasonSlow
				c.f.log.Info("feed client dropped: write timed out", "timeout", c.f.cfg.WriteTimeout, "remote", c.conn.RemoteAddr().String())
			}
			c.f.hub.remove(c.sub, reason, 0, "")
			_ = c.conn.Close()
			return
		}
	}
}

func (c *client) write(it outItem) error {
	if it.frame != nil {
		return c.writeFrame(it.frame)
	}
	for _, fr := range it.batch {
		if err := c.writeFrame(fr); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) writeFrame(fr []byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.f.cfg.WriteTimeout)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, fr); err != nil {
		return err
	}
	c.f.m.FeedFramesSent.Inc()
	return nil
}

// finish sends the close frame, if any, gives the client a moment to answer
// it (the reader ends on its close frame), and closes the connection.
func (c *client) finish() {
	if c.code != 0 {
		if c.code == closePolicy && c.text == "too slow" {
			c.f.log.Info("feed client dropped: send queue full", "queue", c.f.cfg.SendQueue, "remote", c.conn.RemoteAddr().String())
		}
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(c.f.cfg.WriteTimeout))
	}
	grace := time.NewTimer(min(time.Second, c.f.cfg.WriteTimeout))
	defer grace.Stop()
	select {
	case <-c.readerDone:
	case <-grace.C:
	}
	_ = c.conn.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
