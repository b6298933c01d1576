// Package backoff retries an operation with capped exponential backoff and
// full jitter, logging each failure so an operator sees why a worker waits,
// and holds the one wait-or-cancel (Sleep) every retry loop uses.
package backoff

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Defaults of Config.
const (
	DefaultInitial = 200 * time.Millisecond
	DefaultMax     = 10 * time.Second
)

// Config bounds the waits between attempts.
type Config struct {
	// Initial is the first wait. Default DefaultInitial.
	Initial time.Duration
	// Max caps every wait; it is raised to Initial when below it. Default
	// DefaultMax.
	Max time.Duration
	// Attempts is how many times to try in all; 0 means until ctx ends.
	Attempts int
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults, and Max at least Initial.
func (c Config) WithDefaults() Config {
	c.Initial = cmp.Or(max(c.Initial, 0), DefaultInitial)
	c.Max = cmp.Or(max(c.Max, 0), DefaultMax)
	if c.Max < c.Initial {
		c.Max = c.Initial
	}
	return c
}

// Validate reports a setting that cannot work. It applies no defaults.
func (c Config) Validate() error {
	if c.Attempts < 0 {
		return fmt.Errorf("backoff: attempts %d is negative", c.Attempts)
	}
	return nil
}

// Delay returns the jittered wait before retry number attempt (1 for the
// first retry): Initial doubled per attempt, capped at Max, then drawn
// uniformly from [d/2, 3d/2).
func (c Config) Delay(attempt int) time.Duration {
	c = c.WithDefaults()
	d := c.Initial
	for i := 1; i < attempt && d < c.Max; i++ {
		d *= 2
	}
	d = min(d, c.Max)
	return time.Duration(rand.Int64N(int64(d))) + d/2
}

// Retry calls fn until it succeeds, ctx ends or the attempts run out, and
// returns fn's last error (or ctx's). Each failure is logged at warn level
// with what, the attempt number and the next wait.
func Retry(ctx context.Context, log *slog.Logger, cfg Config, what string, fn func(context.Context) error) error {
	cfg = cfg.WithDefaults()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info("recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cfg.Attempts > 0 && attempt >= cfg.Attempts {
			return err
		}
		wait := cfg.Delay(attempt)
		log.Warn("retrying", "op", what, "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		if !Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// Sleep waits for d or until ctx ends, whichever comes first, and reports
// whether the whole of d passed (false: ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
