package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/hostport"
	"github.com/domination/domination/wire"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Objects are the tables and views that Up creates on every server.
var Objects = []string{
	"shadow_stream",
	"shadow",
	"shadow_consumer",
	"shadow_errors",
	"active_visitors_stream",
	"active_visitors",
	"active_visitors_consumer",
	"active_visitors_errors",
	"shadow_arrivals",
	"shadow_minutes",
	"shadow_arrivals_consumer",
	"active_visitors_arrivals",
	"active_visitors_sealed",
	"active_visitors_seals",
	"active_visitors_arrivals_consumer",
}

// ErrorStreamObjects are the views Up creates besides Objects on a server
// whose Kafka engine streams parse errors (Version.ErrorStream).
var ErrorStreamObjects = []string{"shadow_errors_consumer", "active_visitors_errors_consumer"}

// ObjectsFor lists what Up creates on a server of version v.
func ObjectsFor(v Version) []string {
	if v.ErrorStream() {
		return append(slices.Clone(Objects), ErrorStreamObjects...)
	}
	return slices.Clone(Objects)
}

// ErrNoVersion is returned by Migrator.Version when no migration has been
// applied, or the schema has been migrated all the way down.
var ErrNoVersion = errors.New("no migration applied")

// ErrDirty is wrapped by the errors of Up and Down when an earlier migration
// failed part way: someone must look at the database, and then Force the
// version that it is really at.
var ErrDirty = errors.New("a migration failed part way (dirty version)")

// KafkaSource is what the Kafka engine tables read: rendered into the
// migrations at migrate time.
type KafkaSource struct {
	// Brokers is the broker list as ClickHouse's server reaches it,
	// comma-separated host:port. Default DefaultKafkaBrokers.
	Brokers string
	// ShadowTopic is the topic shadow_stream reads. Default
	// DefaultShadowTopic.
	ShadowTopic string
	// ShadowGroup is the Kafka consumer group of shadow_stream.
	// Default DefaultShadowGroup.
	ShadowGroup string
	// ActiveVisitorsTopic is the topic active_visitors_stream reads.
	// Default DefaultActiveVisitorsTopic.
	ActiveVisitorsTopic string
	// ActiveVisitorsGroup is the Kafka consumer group of
	// active_visitors_stream. Default DefaultActiveVisitorsGroup.
	ActiveVisitorsGroup string
	// NumConsumers is kafka_num_consumers, the consumers each Kafka engine
	// table runs; more than the topic's partitions is useless, and current
	// ClickHouse releases refuse more than the server's CPU cores. Default
	// DefaultNumConsumers, at most 16.
	NumConsumers int
}

// Defaults of KafkaSource.
const (
	DefaultKafkaBrokers        = broker.DefaultBroker
	DefaultShadowTopic         = wire.ShadowTopic
	DefaultShadowGroup         = "clickhouse-shadow"
	DefaultActiveVisitorsTopic = wire.ActiveVisitorsTopic
	DefaultActiveVisitorsGroup = "clickhouse-active-visitors"
	DefaultNumConsumers        = 1
	maxNumConsumers            = 16
)

// WithDefaults returns k with its empty fields set to the documented
// defaults.
func (k KafkaSource) WithDefaults() KafkaSource {
	k.Brokers = cmp.Or(k.Brokers, DefaultKafkaBrokers)
	k.ShadowTopic = cmp.Or(k.ShadowTopic, DefaultShadowTopic)
	k.ShadowGroup = cmp.Or(k.ShadowGroup, DefaultShadowGroup)
	k.ActiveVisitorsTopic = cmp.Or(k.ActiveVisitorsTopic, DefaultActiveVisitorsTopic)
	k.ActiveVisitorsGroup = cmp.Or(k.ActiveVisitorsGroup, DefaultActiveVisitorsGroup)
	k.NumConsumers = cmp.Or(k.NumConsumers, DefaultNumConsumers)
	return k
}

var (
	kafkaNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	brokerRE    = regexp.MustCompile(`^[a-zA-Z0-9._:-]+$`)
)

// Validate reports the first problem with k. It applies no defaults:
// NewMigrator does, and then validates.
func (k KafkaSource) Validate() error {
	if k.Brokers == "" {
		return errors.New("kafka source: empty broker list")
	}
	for _, b := range strings.Split(k.Brokers, ",") {
		err := hostport.Check(b)
		if host, _, _ := net.SplitHostPort(b); err == nil && !brokerRE.MatchString(host) {
			err = errors.New("host has characters other than letters, digits, '.', '-', '_' and ':'")
		}
		if err != nil {
			return fmt.Errorf("kafka source: broker %q: %v", b, err)
		}
	}
	for _, f := range []struct{ what, v string }{
		{"shadow topic", k.ShadowTopic},
		{"shadow group", k.ShadowGroup},
		{"active visitors topic", k.ActiveVisitorsTopic},
		{"active visitors group", k.ActiveVisitorsGroup},
	} {
		switch {
		case f.v == "":
			return fmt.Errorf("kafka source: empty %s", f.what)
		case f.v == "." || f.v == "..":
			return fmt.Errorf("kafka source: %s %q is not allowed by Kafka", f.what, f.v)
		case len(f.v) > 249:
			return fmt.Errorf("kafka source: %s is %d characters long, Kafka allows 249", f.what, len(f.v))
		case !kafkaNameRE.MatchString(f.v):
			return fmt.Errorf("kafka source: %s %q: want only letters, digits, '.', '_' and '-'", f.what, f.v)
		}
	}
	if k.NumConsumers < 1 || k.NumConsumers > maxNumConsumers {
		return fmt.Errorf("kafka source: %d consumers: want 1..%d", k.NumConsumers, maxNumConsumers)
	}
	return nil
}

// quote writes s as a ClickHouse single-quoted string literal, escaping
// backslash and quote, so that whatever s holds stays one literal. The
// migration templates use it for every string.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// migrationHeader starts every rendered migration: a SQL comment naming the
// file it came from, so that the database driver, which golang-migrate hands
// only a reader, can name the file in its errors.
const migrationHeader = "-- migration file: "

// templateSource is a golang-migrate source.Driver over migration templates
// in a file system, rendered once when it is made.
type templateSource struct {
	migrations *source.Migrations
	rendered   map[string]string // file name → rendered SQL, header included
}

var _ source.Driver = (*templateSource)(nil)

// templateData is what the migration templates see: the Kafka source's
// fields, and the server the SQL is for (.Server.ErrorStream and the like).
type templateData struct {
	KafkaSource
	Server Version
}

// newTemplateSource reads every migration file in dir of fsys and renders it
// with src for server. A file that does not parse or render is an error
// naming it.
func newTemplateSource(fsys fs.FS, dir string, src KafkaSource, server Version) (*templateSource, error) {
	data := templateData{KafkaSource: src, Server: server}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	s := &templateSource{migrations: source.NewMigrations(), rendered: map[string]string{}}
	funcs := template.FuncMap{"quote": quote}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m, err := source.DefaultParse(e.Name())
		if err != nil || !strings.HasSuffix(m.Raw, ".sql") {
			continue // not a migration: README and the like
		}
		if !s.migrations.Append(m) {
			return nil, fmt.Errorf("read migrations: %s: a second %s migration for version %d", m.Raw, m.Direction, m.Version)
		}
		text, err := fs.ReadFile(fsys, path.Join(dir, m.Raw))
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		tmpl, err := template.New(m.Raw).Option("missingkey=error").Funcs(funcs).Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("render migration %s: %w", m.Raw, err)
		}
		var out bytes.Buffer
		out.WriteString(migrationHeader + m.Raw + "\n")
		if err := tmpl.Execute(&out, data); err != nil {
			return nil, fmt.Errorf("render migration %s: %w", m.Raw, err)
		}
		s.rendered[m.Raw] = out.String()
	}
	if _, ok := s.migrations.First(); !ok {
		return nil, fmt.Errorf("read migrations: no migration files in %s", dir)
	}
	return s, nil
}

func (s *templateSource) Open(string) (source.Driver, error) {
	return nil, errors.New("the rendered migration source is made by NewMigrator, not opened by URL")
}

func (s *templateSource) Close() error { return nil }

func (s *templateSource) First() (uint, error) {
	if v, ok := s.migrations.First(); ok {
		return v, nil
	}
	return 0, os.ErrNotExist
}

func (s *templateSource) Prev(version uint) (uint, error) {
	if v, ok := s.migrations.Prev(version); ok {
		return v, nil
	}
	return 0, os.ErrNotExist
}

func (s *templateSource) Next(version uint) (uint, error) {
	if v, ok := s.migrations.Next(version); ok {
		return v, nil
	}
	return 0, os.ErrNotExist
}

func (s *templateSource) ReadUp(version uint) (io.ReadCloser, string, error) {
	m, ok := s.migrations.Up(version)
	if !ok {
		return nil, "", os.ErrNotExist
	}
	return io.NopCloser(strings.NewReader(s.rendered[m.Raw])), m.Raw, nil
}

func (s *templateSource) ReadDown(version uint) (io.ReadCloser, string, error) {
	m, ok := s.migrations.Down(version)
	if !ok {
		return nil, "", os.ErrNotExist
	}
	return io.NopCloser(strings.NewReader(s.rendered[m.Raw])), m.Raw, nil
}

// Migrator applies the SQL migrations in clickhouse/migrations to one
// database, with golang-migrate, over a native clickhouse-go connection.
//
// The migrations create their tables unqualified, in the connection's
// database, which must be the database given to NewMigrator. The Kafka engine
// tables start consuming as soon as they exist, and only pick up topics that
// exist then: create the topics before Up.
//
// A Migrator runs one operation at a time; concurrent calls wait. Another
// process migrating the same database at the same time is not prevented
// (ClickHouse has no locks): don't.
type Migrator struct {
	mu    sync.Mutex // held for a whole operation
	fsys  fs.FS
	dir   string
	kafka KafkaSource
	src   *templateSource // rendered for server once it is known
	// cluster, when set, is the ClickHouse cluster the migrations run on
	// (see OnCluster).
	cluster string
	server  *Version // nil until the first operation asks the server
	drv     *MigrateDriver
	log     *slog.Logger
	closed  bool
}

// NewMigrator returns a Migrator of database over conn, rendering the
// migrations with src (defaults applied, then validated). It does no I/O:
// the first operation asks the server for its version and renders the
// migrations for it (see the package doc's version table).
// conn stays the caller's: Close does not close it. log may be nil.
func NewMigrator(conn driver.Conn, database string, src KafkaSource, log *slog.Logger) (*Migrator, error) {
	return newMigrator(conn, database, migrationFiles, "migrations", src, log)
}

// newMigrator is NewMigrator reading its migrations from dir in fsys.
func newMigrator(conn driver.Conn, db string, fsys fs.FS, dir string, src KafkaSource, log *slog.Logger) (*Migrator, error) {
	if conn == nil {
		return nil, errors.New("new migrator: nil connection")
	}
	if err := ValidateIdentifier(db); err != nil {
		return nil, fmt.Errorf("new migrator: database: %w", err)
	}
	src = src.WithDefaults()
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	// Rendered once here for the oldest server, so that a template that
	// cannot render fails before anything touches the database.
	ts, err := newTemplateSource(fsys, dir, src, Oldest)
	if err != nil {
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Migrator{fsys: fsys, dir: dir, kafka: src, src: ts, drv: NewMigrateDriver(conn, db), log: log}, nil
}

// OnCluster makes the Migrator run the migrations on every server of the
// ClickHouse cluster named cluster (a <remote_servers> entry of the servers'
// configuration, which also need <zookeeper>, <distributed_ddl> and the
// {shard} and {replica} <macros>): ON CLUSTER DDL, replicated stores and
// version table (see cluster.go). Call it before the first operation.
func (m *Migrator) OnCluster(cluster string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ValidateIdentifier(cluster); err != nil {
		return fmt.Errorf("migrate on cluster: %w", err)
	}
	if m.server != nil {
		return errors.New("migrate on cluster: the migrations are already rendered for one server")
	}
	// Rewritten once here, so that a statement that cannot run on a
	// cluster fails before anything touches the database.
	if err := m.src.onCluster(m.drv.database, cluster); err != nil {
		return fmt.Errorf("migrate on cluster: %w", err)
	}
	m.cluster, m.drv.cluster = cluster, cluster
	return nil
}

// ServerVersion returns the version the migrations are rendered for, asking
// the server the first time.
func (m *Migrator) ServerVersion(ctx context.Context) (Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.render(ctx); err != nil {
		return Version{}, err
	}
	return *m.server, nil
}

// render renders the migrations for the server's version, once. The caller
// holds m.mu.
func (m *Migrator) render(ctx context.Context) error {
	if m.server != nil {
		return nil
	}
	v, err := ServerVersion(ctx, m.drv.conn)
	if err != nil {
		return err
	}
	ts, err := newTemplateSource(m.fsys, m.dir, m.kafka, v)
	if err != nil {
		return err
	}
	if m.cluster != "" {
		if err := ts.onCluster(m.drv.database, m.cluster); err != nil {
			return err
		}
	}
	m.src, m.server = ts, &v
	if err := CheckCommitOrder(ctx, m.drv.conn, v); err != nil {
		m.log.WarnContext(ctx, "clickhouse may lose rows on a crash", "err", err)
	}
	m.log.DebugContext(ctx, "clickhouse migrations rendered", "server_version", v.String(), "error_stream", v.ErrorStream())
	return nil
}

// Up applies every migration not applied yet. Nothing to apply is not an
// error. Cancelling ctx stops Up between two migration files, never inside
// one (a half-applied file would leave a dirty version): Up returns the
// context's error if a migration was left unapplied, nil if none was.
func (m *Migrator) Up(ctx context.Context) error {
	var version uint
	err := m.do(ctx, "migrate up", func(mg *migrate.Migrate) error {
		if err := mg.Up(); err != nil {
			return err
		}
		version, _, _ = mg.Version()
		return nil
	})
	if errors.Is(err, migrate.ErrNoChange) {
		m.log.InfoContext(ctx, "clickhouse schema already up to date", "database", m.drv.database)
		return nil
	}
	if err == nil {
		m.log.InfoContext(ctx, "clickhouse schema migrated up", "database", m.drv.database, "version", version)
	}
	return err
}

// Down undoes every applied migration, removing everything Up created. The
// version table, schema_migrations, stays, recording no version. Nothing to
// undo is not an error. Cancellation works as for Up.
func (m *Migrator) Down(ctx context.Context) error {
	err := m.do(ctx, "migrate down", func(mg *migrate.Migrate) error { return mg.Down() })
	if errors.Is(err, migrate.ErrNoChange) {
		m.log.InfoContext(ctx, "clickhouse schema already down", "database", m.drv.database)
		return nil
	}
	if err == nil {
		m.log.InfoContext(ctx, "clickhouse schema migrated down", "database", m.drv.database)
	}
	return err
}

// Version returns the version applied last, and whether it failed part way
// (dirty). When no migration is applied it returns ErrNoVersion; when undoing
// the last one failed, version 0 and dirty.
func (m *Migrator) Version(ctx context.Context) (version uint, dirty bool, err error) {
	err = m.do(ctx, "migration version", func(*migrate.Migrate) error {
		v, d, err := m.drv.Version()
		switch {
		case err != nil:
			return err
		case v == database.NilVersion && !d:
			return ErrNoVersion
		case v == database.NilVersion:
			version, dirty = 0, true
		default:
			version, dirty = uint(v), d
		}
		return nil
	})
	return version, dirty, err
}

// Force records version as applied and clean, without running anything: the
// way out of a dirty version once the database has been repaired by hand.
// version must be one of the migrations, or -1 for none.
func (m *Migrator) Force(ctx context.Context, version int) error {
	err := m.do(ctx, "force migration version", func(mg *migrate.Migrate) error {
		if version != database.NilVersion {
			if version < 0 {
				return fmt.Errorf("version %d: want a migration's version or -1 for none", version)
			}
			if _, ok := m.src.migrations.Up(uint(version)); !ok {
				return fmt.Errorf("version %d: no such migration", version)
			}
		}
		return mg.Force(version)
	})
	if err == nil {
		m.log.InfoContext(ctx, "clickhouse schema version forced", "database", m.drv.database, "version", version)
	}
	return err
}

// Close ends the Migrator. It does not close the connection it was given.
func (m *Migrator) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// do runs one golang-migrate operation under ctx, one at a time.
//
// Cancellation: the driver's queries use ctx, except that a migration file,
// once started, runs to its end and is recorded (see MigrateDriver.Run and
// SetVersion); the driver refuses to start the next one, so the run stops
// on a clean version. golang-migrate's own GracefulStop channel is not used:
// in v4.20.1 it is a data race between its reading and running goroutines.
func (m *Migrator) do(ctx context.Context, op string, f func(*migrate.Migrate) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("%s: migrator is closed", op)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := m.render(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	mg, err := migrate.NewWithInstance("embedded", m.src, "clickhouse-native", m.drv)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	mg.Log = migrateLogger{ctx: ctx, log: m.log}
	m.drv.setContext(ctx)
	defer m.drv.setContext(context.Background())

	err = f(mg)
	var dirty migrate.ErrDirty
	switch {
	case errors.Is(err, migrate.ErrNoChange):
		return err
	case errors.As(err, &dirty):
		return fmt.Errorf("%s: %w at version %d: repair the database, then force the version it is at", op, ErrDirty, dirty.Version)
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// migrateLogger hands golang-migrate's progress lines to slog.
type migrateLogger struct {
	ctx context.Context
	log *slog.Logger
}

func (l migrateLogger) Printf(format string, v ...any) {
	l.log.InfoContext(l.ctx, "clickhouse migration", "step", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l migrateLogger) Verbose() bool { return false }
