package query

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Time layouts ParseTime accepts besides durations and unix seconds.
const (
	layoutDateTime = "2006-01-02 15:04:05"
	layoutDate     = "2006-01-02"
)

// The range of instants a ClickHouse 18.16 DateTime represents. Outside it,
// 18.16 turns a toDateTime literal into 0 or wraps it, without an error.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ParseTime reads a point in time as a user writes it on the command line,
// relative to now, and returns it in UTC. It accepts:
//
//   - a duration meaning that long before now: a Go duration ("90m",
//     "1h30m", "10s") optionally led by whole days with the suffix d ("7d",
//     "1d12h"), where a day is 24 hours. Negative durations are rejected.
//   - RFC 3339: "2026-11-23T10:00:00Z", "2026-11-23T12:00:00+02:00",
//     fractions of a second allowed.
//   - "2026-11-23 10:00:00", read as UTC.
//   - "2026-11-23", UTC midnight of that day.
//   - unix seconds: "1795428000".
//
// Surrounding spaces are ignored. An empty s returns the zero Time and no
// error: the queries read a zero Since or Until as no bound, so a command can
// pass an unset flag straight through.
func ParseTime(s string, now time.Time) (time.Time, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return time.Time{}, nil
	}
	if isDigits(v) {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse time %q: unix seconds out of range", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(layoutDateTime, v, time.UTC); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(layoutDate, v, time.UTC); err == nil {
		return t, nil
	}
	d, err := parseAgo(v)
	if err != nil {
		if errors.Is(err, errNegative) {
			return time.Time{}, fmt.Errorf("parse time %q: %w; write how long ago as a positive duration, e.g. 1h", s, err)
		}
		return time.Time{}, fmt.Errorf("parse time %q: want a duration before now (90m, 2h, 7d, 1d12h), "+
			"RFC 3339 (2026-11-23T10:00:00Z), %q or %q in UTC, or unix seconds", s, layoutDateTime, layoutDate)
	}
	return now.Add(-d).UTC(), nil
}

var errNegative = errors.New("negative duration")

// parseAgo parses a Go duration optionally led by whole days, "7d" or
// "1d12h".
func parseAgo(s string) (time.Duration, error) {
	if strings.HasPrefix(s, "-") {
		return 0, errNegative
	}
	s = strings.TrimPrefix(s, "+")
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 && isDigits(s[:i]) {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, errors.New("too many days")
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
		if s[0] == '-' || s[0] == '+' {
			return 0, errors.New("sign after days")
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errNegative
	}
	if d > math.MaxInt64-days {
		return 0, errors.New("duration too long")
	}
	return days + d, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkRange validates a [since, until) range, either end zero meaning
// unbounded.
func checkRange(since, until time.Time) error {
	for _, e := range []struct {
		name string
		t    time.Time
	}{{"since", since}, {"until", until}} {
		if e.t.IsZero() {
			continue
		}
		if t := ceilSecond(e.t); t.Before(MinTime) || t.After(MaxTime) {
			return fmt.Errorf("%s %s is outside the range ClickHouse stores, %s to %s",
				e.name, e.t.UTC().Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
		}
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		return fmt.Errorf("until %s must be after since %s",
			until.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// ceilSecond rounds t up to a whole second, in UTC. Stored times are whole
// seconds, so for an inclusive lower bound or an exclusive upper bound,
// comparing with the rounded-up time selects exactly the same rows.
func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

func checkLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("limit %d is negative; 0 means no limit", limit)
	}
	return nil
}
