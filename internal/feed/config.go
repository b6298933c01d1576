package feed

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/hostport"
	"github.com/domination/domination/wire"
)

// Config configures a Feed. Zero fields take the defaults documented beside
// them; Validate reports settings that cannot work.
type Config struct {
	// Brokers are the Kafka bootstrap addresses, host:port. Default
	// [broker.DefaultBroker].
	Brokers []string
	// Dialer connects to Kafka (TLS, SASL). Default: kafka-go's plain
	// dialer.
	Dialer *kafka.Dialer
	// Topic holds the windowed counts; only its partition 0 is read.
	// Default DefaultTopic.
	Topic string

	// Replay is how far back in Topic the feed starts reading when Run
	// starts, to fill the ring of recent counts: from the first record whose
	// timestamp is at most Replay old. Default DefaultReplay.
	Replay time.Duration
	// RingSize bounds the ring of recent counts, one entry per (account,
	// store, window start). It is also the horizon of the duplicate
	// suppression and the most live counts held for a client while its
	// history is being read. Default DefaultRingSize.
	RingSize int
	// HistoryWindows is how many recent counts a client receives on connect
	// and on every setFilter, unless it asks otherwise with ?history=N.
	// Default DefaultHistoryWindows (0 means the default; a client may ask
	// for ?history=0).
	HistoryWindows int
	// MaxHistory is the largest ?history=N accepted. Default
	// DefaultMaxHistory.
	MaxHistory int
	// HistoryTimeout bounds reading the history from ClickHouse for one
	// client; past it the client gets the ring's history only. Default
	// DefaultHistoryTimeout.
	HistoryTimeout time.Duration

	// AllowedOrigins lists the browser origins allowed besides the server's
	// own host: either a full origin ("https://dash.example.com") or a
	// host[:port] ("dash.example.com:8080"), compared case-insensitively.
	// "*" allows every origin. Requests without an Origin header (CLI
	// clients such as websocat) are always allowed. Default: none, so only
	// pages served from the same host may connect.
	AllowedOrigins []string
	// MaxClients bounds the connected clients; one more gets HTTP 503
	// before the upgrade. Default DefaultMaxClients.
	MaxClients int
	// ReadLimit is the largest message a client may send, in bytes; a
	// larger one closes that client with 1009. Default DefaultReadLimit.
	ReadLimit int64
	// SendQueue is how many frames (a history counts as one) may wait for a
	// client; a client whose queue is full is closed with 1008 "too slow".
	// Default DefaultSendQueue.
	SendQueue int

	// PingInterval is how often each client is pinged. Default
	// DefaultPingInterval.
	PingInterval time.Duration
	// PongWait is how long a client may stay silent (no pong, no message)
	// before it is dropped. Must exceed PingInterval. Default
	// DefaultPongWait.
	PongWait time.Duration
	// WriteTimeout bounds writing one frame to a client. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration

	// ReadyWindow is how recent the reader's last successful fetch (or
	// caught-up check) must be for Ready to pass; the reader checks that it
	// is caught up every ReadyWindow/3. Default DefaultReadyWindow.
	ReadyWindow time.Duration
}

// Defaults of Config.
const (
	DefaultTopic          = wire.ActiveVisitorsTopic
	DefaultReplay         = 10 * time.Minute
	DefaultRingSize       = 10000
	DefaultHistoryWindows = 30
	DefaultMaxHistory     = 1000
	DefaultHistoryTimeout = 3 * time.Second
	DefaultMaxClients     = 1000
	DefaultReadLimit      = 4096
	DefaultSendQueue      = 256
	DefaultPingInterval   = 20 * time.Second
	DefaultPongWait       = 30 * time.Second
	DefaultWriteTimeout   = 5 * time.Second
	DefaultReadyWindow    = 30 * time.Second
)

// WithDefaults returns c with its zero fields set to the documented
// defaults; negative ones stay, for Validate to refuse.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{broker.DefaultBroker}
	}
	c.Topic = cmp.Or(c.Topic, DefaultTopic)
	c.Replay = cmp.Or(c.Replay, DefaultReplay)
	c.RingSize = cmp.Or(c.RingSize, DefaultRingSize)
	c.HistoryWindows = cmp.Or(c.HistoryWindows, DefaultHistoryWindows)
	c.MaxHistory = cmp.Or(c.MaxHistory, DefaultMaxHistory)
	c.HistoryTimeout = cmp.Or(c.HistoryTimeout, DefaultHistoryTimeout)
	c.MaxClients = cmp.Or(c.MaxClients, DefaultMaxClients)
	c.ReadLimit = cmp.Or(c.ReadLimit, DefaultReadLimit)
	c.SendQueue = cmp.Or(c.SendQueue, DefaultSendQueue)
	c.PingInterval = cmp.Or(c.PingInterval, DefaultPingInterval)
	c.PongWait = cmp.Or(c.PongWait, DefaultPongWait)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.ReadyWindow = cmp.Or(c.ReadyWindow, DefaultReadyWindow)
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults.
func (c Config) Validate() error {
	if err := hostport.CheckAll("feed kafka broker", c.Brokers); err != nil {
		return err
	}
	if err := broker.ValidTopic(c.Topic); err != nil {
		return fmt.Errorf("feed topic: %w", err)
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"replay", int64(c.Replay)},
		{"ring size", int64(c.RingSize)},
		{"max history", int64(c.MaxHistory)},
		{"history timeout", int64(c.HistoryTimeout)},
		{"max clients", int64(c.MaxClients)},
		{"read limit", c.ReadLimit},
		{"send queue", int64(c.SendQueue)},
		{"ping interval", int64(c.PingInterval)},
		{"pong wait", int64(c.PongWait)},
		{"write timeout", int64(c.WriteTimeout)},
		{"ready window", int64(c.ReadyWindow)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("feed %s must be positive, got %d", p.name, p.v)
		}
	}
	if c.HistoryWindows < 0 || c.HistoryWindows > c.MaxHistory {
		return fmt.Errorf("feed history windows %d is not within 0..%d (max history)", c.HistoryWindows, c.MaxHistory)
	}
	if c.PongWait <= c.PingInterval {
		return errors.New("feed pong wait must be longer than the ping interval, or every client would time out")
	}
	if c.ReadLimit < 64 {
		return fmt.Errorf("feed read limit %d is too small for a setFilter message (at least 64 bytes)", c.ReadLimit)
	}
	for _, o := range c.AllowedOrigins {
		if o == "" {
			return errors.New("feed allowed origins contains an empty entry")
		}
	}
	return nil
}
