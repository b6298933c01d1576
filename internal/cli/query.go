package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/urfave/cli/v2"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/query"
)

func queryCommand() *cli.Command {
	format := &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output: table, json or csv"}
	since := &cli.StringFlag{Name: "since", Usage: "lower bound: a duration back from now (90m, 1h, 7d), RFC 3339, 'YYYY-MM-DD[ hh:mm:ss]' (UTC) or unix seconds"}
	until := &cli.StringFlag{Name: "until", Usage: "upper bound (exclusive), same forms as --since"}
	limit := &cli.IntFlag{Name: "limit", Usage: "print at most this many rows (0: all)"}
	return &cli.Command{
		Name:  "query",
		Usage: "print what ClickHouse holds; counts are exact even when Kafka re-delivered",
		Subcommands: []*cli.Command{
			{
				Name:  "shadow",
				Usage: "count shadow events, by type (default) or by time bucket",
				Flags: []cli.Flag{since, until, limit, format,
					&cli.StringSliceFlag{Name: "type", Usage: "only this type (repeatable): Incompatible, Sha, Dow, ShaDow"},
					&cli.StringFlag{Name: "by", Value: query.DefaultShadowGrouping, Usage: "group by type, minute, hour or day"},
				},
				Action: func(c *cli.Context) error {
					q := query.ShadowQuery{Types: c.StringSlice("type"), By: c.String("by"), Limit: c.Int("limit")}
					return runQuery(c, &q.Since, &q.Until, q.Validate, func(ctx context.Context, conn driver.Conn) (*query.Result, error) {
						return query.Shadow(ctx, conn, q)
					})
				},
			},
			{
				Name:  "active-visitors",
				Usage: "list windowed active-visitor counts",
				Flags: []cli.Flag{since, until, limit, format,
					&cli.Int64SliceFlag{Name: "account-id", Usage: "only this account (repeatable)"},
					&cli.StringSliceFlag{Name: "store-id", Usage: "only this store (repeatable)"},
					&cli.BoolFlag{Name: "null-store", Usage: "include visits without a store (alone: only those)"},
				},
				Action: func(c *cli.Context) error {
					q := query.ActiveVisitorsQuery{AccountIDs: c.Int64Slice("account-id"), StoreIDs: c.StringSlice("store-id"), NullStore: c.Bool("null-store"), Limit: c.Int("limit")}
					return runQuery(c, &q.Since, &q.Until, q.Validate, func(ctx context.Context, conn driver.Conn) (*query.Result, error) {
						return query.ActiveVisitors(ctx, conn, q)
					})
				},
			},
		},
	}
}

// runQuery validates everything the user typed before connecting, then runs
// the query with a bound on the whole command.
func runQuery(c *cli.Context, since, until *time.Time, validate func() error, run func(context.Context, driver.Conn) (*query.Result, error)) error {
	format := c.String("format")
	if err := query.ValidFormat(format); err != nil {
		return err
	}
	var err error
	if *since, *until, err = timeSpan(c, time.Now()); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return err
	}
	return withClickHouse(c, 2*time.Minute, func(ctx context.Context, conn driver.Conn) error {
		res, err := run(ctx, conn)
		if err != nil {
			return err
		}
		return res.Write(c.App.Writer, format)
	})
}

// withClickHouse reads the global ClickHouse flags, connects and runs fn,
// all within timeout.
func withClickHouse(c *cli.Context, timeout time.Duration, fn func(context.Context, driver.Conn) error) error {
	cfg, err := clickhouseConfig(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(ctx, conn)
}

// timeSpan reads --since and --until, relative to now.
func timeSpan(c *cli.Context, now time.Time) (since, until time.Time, err error) {
	if since, err = query.ParseTime(c.String("since"), now); err != nil {
		return since, until, fmt.Errorf("--since: %w", err)
	}
	if until, err = query.ParseTime(c.String("until"), now); err != nil {
		return since, until, fmt.Errorf("--until: %w", err)
	}
	return since, until, nil
}

// textOrJSON reads the --format of a command that prints text or json.
func textOrJSON(c *cli.Context) (string, error) {
	format := c.String("format")
	if format != "text" && format != "json" {
		return "", fmt.Errorf("--format %q is not one of text, json", format)
	}
	return format, nil
}

// printReport prints rep as one JSON object or as its String, as format
// (from textOrJSON) says.
func printReport(c *cli.Context, format string, rep fmt.Stringer) error {
	if format == "json" {
		return json.NewEncoder(c.App.Writer).Encode(rep)
	}
	fmt.Fprintln(c.App.Writer, rep.String())
	return nil
}
