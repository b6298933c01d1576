package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/dlq"
	"github.com/domination/domination/internal/query"
)

// defaultDLQTimeout bounds one dlq command.
const defaultDLQTimeout = 5 * time.Minute

func dlqCommand() *cli.Command {
	topic := &cli.StringFlag{Name: "topic", Usage: "the dead-letter topic (default: the --ratings-dlq-topic value; --topic " + agents.DefaultVisitsDeadLetterTopic + " for visits)"}
	timeout := &cli.DurationFlag{Name: "timeout", Value: defaultDLQTimeout, Usage: "give up after this long"}
	selection := []cli.Flag{
		&cli.StringSliceFlag{Name: "reason", Usage: "only dead letters with this dlq.reason (repeatable), e.g. out_of_range"},
		&cli.StringFlag{Name: "since", Usage: "only inputs stamped at or after this time (same forms as query --since)"},
		&cli.StringFlag{Name: "until", Usage: "only inputs stamped before this time"},
		&cli.StringSliceFlag{Name: "offset", Usage: "only these dead letters: PARTITION/OFFSET, PARTITION/FROM-TO or PARTITION/FROM- (repeatable)"},
	}
	return &cli.Command{
		Name:  "dlq",
		Usage: "inspect a dead-letter topic and replay its records once their cause is fixed",
		Description: `A dead letter is a refused input: its original key, value and headers, stamped
with its original time, plus the headers dlq.reason, dlq.detail, dlq.agent,
dlq.topic, dlq.partition, dlq.offset and dlq.timestamp saying why and where
from. Times below are the input's time. A topic is read up to its end as it
is when the command starts.

replay sends each selected record back to its dlq.topic, on its original
partition, with its original key, value, headers (without the dlq.* ones)
and timestamp, plus dlq.replayed-from=<dlq topic>/<partition>/<offset>. It is
safe to repeat: a replayed rating carries its original bytes and time, so it
produces the same shadow row (emit_timestamp is the rating's timestamp),
which ClickHouse stores once (shadow is a ReplacingMergeTree on
emit_timestamp and unique_id, read with FINAL).`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list dead letters: one row each (--by record) or counts per reason with their time span (--by reason)",
				Flags: append([]cli.Flag{topic, timeout,
					&cli.StringFlag{Name: "by", Value: "record", Usage: "record or reason"},
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output: table, json or csv"},
					&cli.IntFlag{Name: "limit", Usage: "list at most this many records (0: all)"},
				}, selection...),
				Action: runDLQList,
			},
			{
				Name:  "show",
				Usage: "show one dead letter: its headers and original bytes (text when printable, and hex)",
				Flags: []cli.Flag{topic, timeout,
					&cli.StringFlag{Name: "offset", Usage: "the dead letter, PARTITION/OFFSET (as dlq list prints them)", Required: true},
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "output: text or json"},
				},
				Action: runDLQShow,
			},
			{
				Name:  "replay",
				Usage: "send selected dead letters back to their original topic (idempotent; --dry-run to see what would be sent)",
				Description: `Selects dead letters by --reason, --since/--until (the input's time) and
--offset, all of which must match; --all selects every one. Before sending
anything it checks the whole selection: a record without dlq.topic, or a
destination topic that does not exist, is an error and nothing is sent.
Records whose value was truncated when dead-lettered (dlq.truncated) are
skipped and counted. Records are written with acks from all in-sync replicas;
the summary line says how many were selected, sent, acknowledged and skipped,
also when a write fails part way.`,
				Flags: append([]cli.Flag{topic, timeout,
					&cli.BoolFlag{Name: "all", Usage: "select every dead letter of the topic"},
					&cli.BoolFlag{Name: "dry-run", Usage: "check and print what would be sent; send nothing"},
				}, selection...),
				Action: runDLQReplay,
			},
		},
	}
}

// openDLQ reads the flags shared by the dlq commands.
func openDLQ(c *cli.Context) (*dlq.DLQ, context.Context, context.CancelFunc, error) {
	kc, err := kafkaConfig(c)
	if err != nil {
		return nil, nil, nil, err
	}
	t := c.String("topic")
	if t == "" {
		t = global(c, "ratings-dlq-topic")
	}
	d, err := dlq.New(dlq.Config{Topic: t, Kafka: kc})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	return d, ctx, func() { cancel(); stop(); d.Close() }, nil
}

// selectionFlags reads --reason, --since, --until and --offset.
func selectionFlags(c *cli.Context) (dlq.Selection, error) {
	sel := dlq.Selection{Reasons: c.StringSlice("reason")}
	var err error
	if sel.Since, sel.Until, err = timeSpan(c, time.Now()); err != nil {
		return sel, err
	}
	for _, s := range c.StringSlice("offset") {
		r, err := dlq.ParseRange(s)
		if err != nil {
			return sel, fmt.Errorf("--offset: %w", err)
		}
		sel.Ranges = append(sel.Ranges, r)
	}
	return sel, sel.Validate()
}

func runDLQList(c *cli.Context) error {
	format, by, limit := c.String("format"), c.String("by"), c.Int("limit")
	if err := query.ValidFormat(format); err != nil {
		return err
	}
	if by != "record" && by != "reason" {
		return fmt.Errorf("--by %q is not one of record, reason", by)
	}
	if limit < 0 {
		return fmt.Errorf("--limit %d is negative", limit)
	}
	sel, err := selectionFlags(c)
	if err != nil {
		return err
	}
	d, ctx, done, err := openDLQ(c)
	if err != nil {
		return err
	}
	defer done()

	type span struct {
		n           int
		first, last time.Time
	}
	reasons := map[string]*span{}
	res := &query.Result{Columns: []string{"partition", "offset", "time", "reason", "origin", "agent", "key", "bytes", "detail"}}
	errLimit := errors.New("limit reached")
	err = d.Scan(ctx, sel, func(r dlq.Record) error {
		if by == "reason" {
			s := reasons[r.Reason]
			if s == nil {
				s = &span{first: r.Time, last: r.Time}
				reasons[r.Reason] = s
			}
			s.n++
			if r.Time.Before(s.first) {
				s.first = r.Time
			}
			if r.Time.After(s.last) {
				s.last = r.Time
			}
			return nil
		}
		res.Rows = append(res.Rows, []any{int64(r.Partition), r.Offset, r.Time.UTC(), r.Reason, r.OriginID(), r.Agent, printable(r.Key), int64(len(r.Value)), r.Detail})
		if limit > 0 && len(res.Rows) >= limit {
			return errLimit
		}
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		return fmt.Errorf("dlq list: %w", err)
	}
	if by == "reason" {
		res = &query.Result{Columns: []string{"reason", "records", "first", "last"}}
		names := make([]string, 0, len(reasons))
		for k := range reasons {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			s := reasons[k]
			res.Rows = append(res.Rows, []any{k, int64(s.n), s.first.UTC(), s.last.UTC()})
		}
	}
	return res.Write(c.App.Writer, format)
}

func runDLQShow(c *cli.Context) error {
	format, err := textOrJSON(c)
	if err != nil {
		return err
	}
	at, err := dlq.ParseRange(c.String("offset"))
	if err != nil || at.To != at.From {
		return fmt.Errorf("--offset %q: want one record, PARTITION/OFFSET", c.String("offset"))
	}
	d, ctx, done, err := openDLQ(c)
	if err != nil {
		return err
	}
	defer done()
	r, err := d.Get(ctx, at.Partition, at.From)
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	if format == "json" {
		return showJSON(c.App.Writer, r)
	}
	showText(c.App.Writer, r)
	return nil
}

func showText(w io.Writer, r dlq.Record) {
	row := func(k, v string) { fmt.Fprintf(w, "%-12s %s\n", k, v) }
	row("dead letter", r.ID())
	row("time", r.Time.UTC().Format(time.RFC3339Nano))
	row("reason", r.Reason)
	row("detail", r.Detail)
	row("agent", r.Agent)
	row("origin", r.OriginID())
	if r.Truncated > 0 {
		row("truncated", fmt.Sprintf("to %d of %d bytes: the original cannot be replayed", len(r.Value), r.Truncated))
	}
	if len(r.Key) == 0 {
		row("key", "(none)")
	} else {
		row("key", printable(r.Key))
	}
	fmt.Fprintf(w, "headers      %d\n", len(r.Headers))
	for _, h := range r.Headers {
		fmt.Fprintf(w, "  %s: %s\n", h.Key, printable(h.Value))
	}
	fmt.Fprintf(w, "value        %d bytes\n", len(r.Value))
	if isPrintable(r.Value) {
		for _, line := range strings.Split(strings.TrimRight(string(r.Value), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
		return
	}
	fmt.Fprint(w, hex.Dump(r.Value))
}

func showJSON(w io.Writer, r dlq.Record) error {
	type header struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	out := struct {
		Topic     string    `json:"topic"`
		Partition int       `json:"partition"`
		Offset    int64     `json:"offset"`
		Time      time.Time `json:"time"`
		Reason    string    `json:"reason"`
		Detail    string    `json:"detail"`
		Agent     string    `json:"agent"`
		Origin    string    `json:"origin"`
		Truncated int       `json:"truncated,omitempty"`
		Key       string    `json:"key"`
		Headers   []header  `json:"headers"`
		Bytes     int       `json:"bytes"`
		// Value is the value as text when it is printable UTF-8; ValueHex
		// is always set.
		Value    *string `json:"value"`
		ValueHex string  `json:"value_hex"`
	}{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Time.UTC(),
		Reason: r.Reason, Detail: r.Detail, Agent: r.Agent, Origin: r.OriginID(), Truncated: r.Truncated,
		Key: printable(r.Key), Headers: []header{}, Bytes: len(r.Value), ValueHex: hex.EncodeToString(r.Value),
	}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, header{h.Key, printable(h.Value)})
	}
	if isPrintable(r.Value) {
		s := string(r.Value)
		out.Value = &s
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runDLQReplay(c *cli.Context) error {
	sel, err := selectionFlags(c)
	if err != nil {
		return err
	}
	if sel.Empty() != c.Bool("all") {
		if c.Bool("all") {
			return errors.New("dlq replay: --all selects everything; leave out --reason, --since, --until and --offset")
		}
		return errors.New("dlq replay: say what to replay with --reason, --since, --until or --offset, or --all")
	}
	d, ctx, done, err := openDLQ(c)
	if err != nil {
		return err
	}
	defer done()
	dry := c.Bool("dry-run")
	var plan *query.Result
	opts := dlq.ReplayOptions{DryRun: dry}
	if dry {
		plan = &query.Result{Columns: []string{"dead_letter", "to", "time", "reason", "key", "bytes", "action"}}
		opts.OnRecord = func(r dlq.Record, m kafka.Message, skipped bool) {
			to, action := m.Topic+"/"+strconv.Itoa(m.Partition), "send"
			if m.Partition < 0 {
				to = m.Topic + "/by key"
			}
			if skipped {
				action = "skip: truncated"
			}
			plan.Rows = append(plan.Rows, []any{r.ID(), to, r.Time.UTC(), r.Reason, printable(r.Key), int64(len(m.Value)), action})
		}
	}
	sum, err := d.Replay(ctx, sel, opts)
	if plan != nil && err == nil {
		if werr := plan.Write(c.App.Writer, "table"); werr != nil {
			return werr
		}
	}
	if err == nil || sum.Sent > 0 {
		fmt.Fprintln(c.App.Writer, sum.String())
	}
	if err != nil {
		return fmt.Errorf("dlq replay from %s: %w", d.Topic(), err)
	}
	return nil
}

// isPrintable reports whether b is UTF-8 text without control characters
// other than tab and newline.
func isPrintable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

// printable returns b as text when it is printable, else quoted with Go
// escapes.
func printable(b []byte) string {
	if isPrintable(b) && !strings.ContainsAny(string(b), "\n\r") {
		return string(b)
	}
	return strconv.Quote(string(b))
}
