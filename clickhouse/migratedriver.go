package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4/database"
)

// driverName is the name MigrateDriver is registered under with
// golang-migrate, and the URL scheme it opens.
const driverName = "clickhouse-native"

// versionTable is where MigrateDriver records versions, in the same layout as
// golang-migrate's own ClickHouse driver: one row per change, the latest
// sequence wins.
const versionTable = "schema_migrations"

// unknownTable is ClickHouse's error code for a table that does not exist.
const unknownTable = 60

func init() {
	database.Register(driverName, &MigrateDriver{})
}

// MigrateDriver is a golang-migrate database.Driver over a clickhouse-go v2
// native connection.
//
// It exists because golang-migrate's own ClickHouse driver goes through
// database/sql and records each version with INSERT … VALUES, which hangs on
// ClickHouse 18.16. This one records versions with a batch insert naming its
// columns, which works on 18.16 and on current releases, and it cuts each
// migration file into statements, because the native protocol runs one
// statement per query.
//
// ClickHouse has no locks: Lock only keeps two migrations in this process
// apart. Running migrations from two processes at once is not prevented.
//
// Make one with NewMigrateDriver, or let golang-migrate open one from a URL
// clickhouse-native://host:port/database?username=…&password=… (see Open).
type MigrateDriver struct {
	conn     driver.Conn
	database string
	cluster  string // non-empty: DDL runs ON CLUSTER, the version table is replicated
	ownsConn bool   // Close closes conn: it was opened from a URL

	mu       sync.Mutex // guards the fields below
	ctx      context.Context
	locked   bool
	checked  bool // the connection's database is known to be database
	hasTable bool // the version table is known to exist
	lastSeq  uint64
}

var _ database.Driver = (*MigrateDriver)(nil)

// NewMigrateDriver returns a driver migrating database over conn, which must
// be connected to that database: migrations create unqualified tables, in the
// connection's database, and the driver checks that they agree before it
// changes anything. Close leaves conn open.
func NewMigrateDriver(conn driver.Conn, database string) *MigrateDriver {
	return &MigrateDriver{conn: conn, database: database, ctx: context.Background()}
}

// setContext makes the driver's queries run under ctx until the next call.
// golang-migrate's interface has no contexts, so Migrator sets one around
// each operation.
func (d *MigrateDriver) setContext(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = ctx
}

func (d *MigrateDriver) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

// Open connects to the ClickHouse named by a URL and returns a driver that
// closes the connection on Close:
//
//	clickhouse-native://host:port[,host:port…]/database?username=u&password=p&secure=true&dial_timeout=5s
//
// (the scheme clickhouse:// is accepted too; user and password may also come
// as user:password@). Missing parts take Config's defaults.
func (d *MigrateDriver) Open(rawURL string) (database.Driver, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conn, err := Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	nd := NewMigrateDriver(conn, cfg.Database)
	nd.ownsConn = true
	return nd, nil
}

// parseURL reads a Config from a clickhouse-native:// URL.
func parseURL(rawURL string) (Config, error) {
	var cfg Config
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's errors quote the whole URL, password included.
		return cfg, errors.New("clickhouse url: cannot parse it")
	}
	if u.Scheme != driverName && u.Scheme != "clickhouse" {
		return cfg, fmt.Errorf("clickhouse url: scheme %q: want %s", u.Scheme, driverName)
	}
	if u.Host != "" {
		cfg.Addr = strings.Split(u.Host, ",")
	}
	cfg.Database = strings.TrimPrefix(u.Path, "/")
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "username":
			cfg.Username = v
		case "password":
			cfg.Password = v
		case "database":
			cfg.Database = v
		case "secure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("clickhouse url: secure=%q: want true or false", v)
			}
			cfg.TLS.Enabled = b
		case "dial_timeout":
			t, err := time.ParseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("clickhouse url: dial_timeout=%q: want a duration such as 5s", v)
			}
			cfg.DialTimeout = t
		default:
			return cfg, fmt.Errorf("clickhouse url: unknown parameter %q", k)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("clickhouse url: %w", err)
	}
	return cfg, nil
}

// Close closes the connection if the driver opened it.
func (d *MigrateDriver) Close() error {
	if d.ownsConn {
		return d.conn.Close()
	}
	return nil
}

// Lock marks the driver busy, or returns database.ErrLocked if it is. It
// guards this process only: ClickHouse has no locks.
func (d *MigrateDriver) Lock() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.locked {
		return database.ErrLocked
	}
	d.locked = true
	return nil
}

// Unlock undoes Lock.
func (d *MigrateDriver) Unlock() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.locked {
		return database.ErrNotLocked
	}
	d.locked = false
	return nil
}

// check makes sure, once, that the connection runs in the driver's database,
// where the unqualified names of the migrations land.
func (d *MigrateDriver) check(ctx context.Context) error {
	d.mu.Lock()
	done := d.checked
	d.mu.Unlock()
	if done {
		return nil
	}
	var current string
	if err := d.conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&current); err != nil {
		return fmt.Errorf("read current database: %w", err)
	}
	if current != d.database {
		return fmt.Errorf("the connection is in database %q, not %q: migrations create their tables in the connection's database", current, d.database)
	}
	d.mu.Lock()
	d.checked = true
	d.mu.Unlock()
	return nil
}

// Run cuts a migration into statements and runs them in order, stopping at
// the first that fails. The error names the migration file (when the source
// is Migrator's), the statement's line and ClickHouse's message.
//
// The statements run to the end even if the operation's context is
// cancelled: stopping inside a file would leave the schema half-changed.
// Migrator stops between files instead.
func (d *MigrateDriver) Run(migration io.Reader) error {
	body, err := io.ReadAll(migration)
	if err != nil {
		return fmt.Errorf("read migration: %w", err)
	}
	name, script := "migration", string(body)
	if rest, ok := strings.CutPrefix(script, migrationHeader); ok {
		file, after, _ := strings.Cut(rest, "\n")
		name, script = "migration "+file, after
	}
	stmts, err := splitStatements(script)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	ctx := context.WithoutCancel(d.context())
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	for _, s := range stmts {
		if err := d.conn.Exec(ctx, s.SQL); err != nil {
			return fmt.Errorf("run %s: statement at line %d: %w", name, s.Line, err)
		}
	}
	return nil
}

// SetVersion records version (database.NilVersion for none) and whether it
// is dirty, creating the version table if need be. As golang-migrate's own
// driver does, it appends a row; the one with the highest sequence is
// current.
//
// golang-migrate calls it with dirty set just before each migration, and
// clean just after. Once the operation's context is cancelled the first
// kind fails, stopping the run on a clean version; the second still
// completes, so that a migration that ran is recorded.
func (d *MigrateDriver) SetVersion(version int, dirty bool) error {
	ctx := d.context()
	if dirty && ctx.Err() != nil {
		// golang-migrate marks the version dirty before each migration:
		// the last point at which to stop cleanly.
		return fmt.Errorf("stopped before migrating to version %d: %w", version, context.Cause(ctx))
	}
	ctx = context.WithoutCancel(ctx)
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	if err := d.ensureTable(ctx); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	batch, err := d.conn.PrepareBatch(ctx, "INSERT INTO "+d.table()+" (version, dirty, sequence)")
	if err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	defer batch.Close()
	var dirtyFlag uint8
	if dirty {
		dirtyFlag = 1
	}
	if err := batch.Append(int64(version), dirtyFlag, d.nextSequence()); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	return nil
}

// nextSequence is the clock in nanoseconds, but always above the last one
// this driver wrote, so that two quick writes keep their order.
func (d *MigrateDriver) nextSequence() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := uint64(time.Now().UnixNano())
	if seq <= d.lastSeq {
		seq = d.lastSeq + 1
	}
	d.lastSeq = seq
	return seq
}

func (d *MigrateDriver) table() string {
	return quoteIdentifier(d.database) + "." + versionTable
}

func (d *MigrateDriver) ensureTable(ctx context.Context) error {
	d.mu.Lock()
	done := d.hasTable
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := d.conn.Exec(ctx, versionTableDDL(d.database, d.cluster)); err != nil {
		return fmt.Errorf("create %s: %w", versionTable, err)
	}
	d.mu.Lock()
	d.hasTable = true
	d.mu.Unlock()
	return nil
}

// Version returns the version recorded last and whether it is dirty;
// database.NilVersion when none is (no version table yet counts as none).
func (d *MigrateDriver) Version() (version int, dirty bool, err error) {
	ctx := d.context()
	if err := d.check(ctx); err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	var (
		v int64
		f uint8
	)
	q := "SELECT version, dirty FROM " + d.table() + " ORDER BY sequence DESC LIMIT 1"
	err = d.conn.QueryRow(ctx, q).Scan(&v, &f)
	var ex *ch.Exception
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &ex) && ex.Code == unknownTable:
		return database.NilVersion, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	return int(v), f != 0, nil
}

// Drop removes every table and view of the database, the version table
// included: views first, so that nothing reads from Kafka or writes while
// the tables go.
func (d *MigrateDriver) Drop() error {
	ctx := d.context()
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	rows, err := d.conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", d.database)
	if err != nil {
		return fmt.Errorf("drop tables: list them: %w", err)
	}
	type table struct{ name, engine string }
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.engine); err != nil {
			rows.Close()
			return fmt.Errorf("drop tables: list them: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("drop tables: list them: %w", err)
	}
	rank := func(engine string) int {
		switch engine {
		case "MaterializedView", "View":
			return 0
		case "Kafka":
			return 1
		}
		return 2
	}
	sort.SliceStable(tables, func(i, j int) bool { return rank(tables[i].engine) < rank(tables[j].engine) })
	for _, t := range tables {
		// DROP TABLE drops views too; 18.16 has no DROP VIEW.
		q := "DROP TABLE IF EXISTS " + quoteIdentifier(d.database) + "." + quoteIdentifier(t.name)
		if d.cluster != "" {
			q += " ON CLUSTER " + quoteIdentifier(d.cluster)
		}
		if err := d.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("drop table %s: %w", t.name, err)
		}
	}
	d.mu.Lock()
	d.hasTable = false
	d.mu.Unlock()
	return nil
}
