package clickhouse

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/hostport"
)

// Config says how to reach ClickHouse over its native protocol. The zero
// value, after defaults, reaches a local server as user "default".
type Config struct {
	// Addr lists host:port addresses of the native protocol; they are tried
	// in order. Default [DefaultAddr].
	Addr []string
	// Database is the database every query runs in. Default
	// DefaultDatabase.
	Database string
	// Username to log in as. Default DefaultUsername.
	Username string
	// Password of Username. Default empty. It never appears in errors.
	Password string
	// TLS for the connection; nil (the default) is plain TCP.
	TLS *tls.Config
	// DialTimeout bounds each attempt to open a connection, and waiting for
	// a free one in the pool. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// QueryTimeout bounds how long to wait for the server to send anything
	// while a query runs. Default 0: clickhouse-go's own limit (5 minutes);
	// a context deadline on the call always applies too.
	QueryTimeout time.Duration
	// MaxOpenConns caps the connections open at once. Default
	// DefaultMaxOpenConns.
	MaxOpenConns int
}

// Defaults of Config.
const (
	DefaultAddr         = "127.0.0.1:9000"
	DefaultDatabase     = "default"
	DefaultUsername     = "default"
	DefaultDialTimeout  = 5 * time.Second
	DefaultMaxOpenConns = 4
)

// WithDefaults returns c with its zero fields set to the documented
// defaults; negative ones stay, for Validate to refuse.
func (c Config) WithDefaults() Config {
	if len(c.Addr) == 0 {
		c.Addr = []string{DefaultAddr}
	}
	c.Database = cmp.Or(c.Database, DefaultDatabase)
	c.Username = cmp.Or(c.Username, DefaultUsername)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.MaxOpenConns = cmp.Or(c.MaxOpenConns, DefaultMaxOpenConns)
	return c
}

// Validate reports the first problem with c. It applies no defaults: call
// it on c.WithDefaults().
func (c Config) Validate() error {
	if err := hostport.CheckAll("clickhouse address", c.Addr); err != nil {
		return err
	}
	if err := ValidateIdentifier(c.Database); err != nil {
		return fmt.Errorf("clickhouse database: %w", err)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("clickhouse dial timeout %v is negative", c.DialTimeout)
	}
	if c.QueryTimeout < 0 {
		return fmt.Errorf("clickhouse query timeout %v is negative", c.QueryTimeout)
	}
	if c.MaxOpenConns < 1 {
		return fmt.Errorf("clickhouse max open connections %d: want at least 1", c.MaxOpenConns)
	}
	return nil
}

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateIdentifier accepts the names that need no quoting in ClickHouse:
// [A-Za-z_][A-Za-z0-9_]*. Database names are held to it, so they can be
// written into statements safely.
func ValidateIdentifier(name string) error {
	if !identifierRE.MatchString(name) {
		return fmt.Errorf("%q is not an identifier: want a letter or _ followed by letters, digits or _", name)
	}
	return nil
}

// options turns a defaulted, valid Config into clickhouse-go's options.
func (c Config) options() (*ch.Options, error) {
	return &ch.Options{
		Protocol: ch.Native,
		Addr:     c.Addr,
		Auth: ch.Auth{
			Database: c.Database,
			Username: c.Username,
			Password: c.Password,
		},
		TLS:          c.TLS,
		DialTimeout:  c.DialTimeout,
		ReadTimeout:  c.QueryTimeout,
		MaxOpenConns: c.MaxOpenConns,
		MaxIdleConns: c.MaxOpenConns,
		ClientInfo: ch.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "domination"}},
		},
	}, nil
}

// pingTimeout bounds Open's first round trip: one dial per address, and one
// more DialTimeout for the handshake and the ping, so that a server that
// accepts TCP but never answers cannot hold Open for clickhouse-go's 5-minute
// read timeout.
func (c Config) pingTimeout() time.Duration {
	return c.DialTimeout * time.Duration(len(c.Addr)+1)
}

// Open connects to ClickHouse and pings it, so that a wrong address, user or
// password is reported here, in one line naming the address:
//
//	connect to clickhouse at 127.0.0.1:9000: dial tcp 127.0.0.1:9000: connect: connection refused
//
// It gives up after about DialTimeout per address. The caller closes the
// connection.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	conn, err := Connect(cfg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	where := strings.Join(cfg.Addr, ",")
	pctx, cancel := context.WithTimeout(ctx, cfg.pingTimeout())
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		_ = conn.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v: %w", cfg.pingTimeout(), err)
		}
		return nil, fmt.Errorf("connect to clickhouse at %s: %w", where, err)
	}
	return conn, nil
}

// Connect returns a connection that dials on first use, for long-running
// processes that must start, and report, while ClickHouse is down: each
// query then fails with its own error until the server answers.
func Connect(cfg Config) (driver.Conn, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse at %s: %w", strings.Join(cfg.Addr, ","), err)
	}
	return conn, nil
}

// EnsureDatabase creates cfg.Database when it does not exist. It connects to
// the database "default" to do so, with the rest of cfg.
func EnsureDatabase(ctx context.Context, cfg Config) error {
	return EnsureDatabaseOnCluster(ctx, cfg, "")
}

// EnsureDatabaseOnCluster is EnsureDatabase on every server of cluster (ON
// CLUSTER), or on the one cfg reaches when cluster is empty.
func EnsureDatabaseOnCluster(ctx context.Context, cfg Config, cluster string) error {
	cfg = cfg.WithDefaults()
	name := cfg.Database
	if err := ValidateIdentifier(name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	cfg.Database = DefaultDatabase
	conn, err := Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close()
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdentifier(name)
	if cluster != "" {
		if err := ValidateIdentifier(cluster); err != nil {
			return fmt.Errorf("create database %s: cluster: %w", name, err)
		}
		q = clusterDatabaseDDL(name, cluster)
	}
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// quoteIdentifier backquotes a name for ClickHouse, escaping \ and `.
func quoteIdentifier(name string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`")
	return "`" + r.Replace(name) + "`"
}
