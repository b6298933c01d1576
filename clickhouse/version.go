package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Version is a ClickHouse server release, as SELECT version() reports it
// ("18.16.1", "26.9.1.1"). The zero Version is older than every release and
// gets the oldest supported rules.
type Version struct {
	Major, Minor, Patch int
}

// Releases whose behaviour the schema depends on.
var (
	// Oldest is the oldest release the product supports: Debian's package.
	Oldest = Version{18, 16, 0}
	// ErrorStreamSince is the first release whose Kafka engine takes
	// kafka_handle_error_mode = 'stream' and has the _error and
	// _raw_message virtual columns. It is a conservative bound: on a server
	// older than it, the worker's guard keeps the engine moving instead.
	ErrorStreamSince = Version{21, 6, 0}
	// CommitAfterWriteSince is the first release whose Kafka engine writes
	// the rows of a pass to the view's table before it commits their
	// offsets (ClickHouse pull request 6597). Before it, the insert into the
	// view squashes blocks up to min_insert_block_size_rows and writes the
	// rest only after the asynchronous commit is sent: a server killed in
	// between has committed rows it never wrote. See CheckCommitOrder.
	CommitAfterWriteSince = Version{19, 14, 0}
)

// CheckCommitOrder returns an error saying how to fix it when the Kafka
// engine of the server behind conn, of release v, can lose rows it has
// committed: a release before CommitAfterWriteSince whose settings squash
// inserts. With min_insert_block_size_rows and min_insert_block_size_bytes
// both 0 in the default profile (the one the engine's background inserts
// run with), every block is written before the commit, and a crash re-reads
// what it had not written instead of losing it. conn's own profile is read:
// run it as a user of the default profile.
func CheckCommitOrder(ctx context.Context, conn driver.Conn, v Version) error {
	if v.AtLeast(CommitAfterWriteSince) {
		return nil
	}
	rows, err := conn.Query(ctx, "SELECT name, value FROM system.settings WHERE name IN ('min_insert_block_size_rows', 'min_insert_block_size_bytes') ORDER BY name")
	if err != nil {
		return fmt.Errorf("read clickhouse insert settings: %w", err)
	}
	defer rows.Close()
	var squashing []string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return fmt.Errorf("read clickhouse insert settings: %w", err)
		}
		if value != "0" {
			squashing = append(squashing, name+" = "+value)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read clickhouse insert settings: %w", err)
	}
	if len(squashing) == 0 {
		return nil
	}
	return fmt.Errorf("the Kafka engine of ClickHouse %s commits offsets before it writes the rows it squashed (%s): a server killed then loses up to that many rows; set min_insert_block_size_rows and min_insert_block_size_bytes to 0 in the default profile (users.xml), or run %s or later",
		v, strings.Join(squashing, ", "), CommitAfterWriteSince)
}

// ParseVersion reads "major.minor[.patch[.build]]".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("parse clickhouse version %q: want major.minor[.patch]", s)
	}
	var n [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil || v < 0 {
			return Version{}, fmt.Errorf("parse clickhouse version %q: %q is not a number", s, parts[i])
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

// String is "major.minor.patch".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is o or a later release.
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// ErrorStream reports whether the Kafka engine of v routes records it cannot
// parse to the _error column instead of stopping on them.
func (v Version) ErrorStream() bool { return v.AtLeast(ErrorStreamSince) }

// ServerVersion asks the server behind conn for its release.
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return Version{}, fmt.Errorf("read clickhouse version: %w", err)
	}
	return ParseVersion(s)
}
