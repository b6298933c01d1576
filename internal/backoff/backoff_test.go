package backoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDelayIsJitteredAroundTheDoubledAndCappedBase(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{}},
		{"small initial, low cap", Config{Initial: 3 * time.Millisecond, Max: 100 * time.Millisecond}},
		{"cap below initial is raised to initial", Config{Initial: 50 * time.Millisecond, Max: 10 * time.Millisecond}},
		{"odd initial", Config{Initial: 7 * time.Millisecond, Max: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.WithDefaults()
			for attempt := 1; attempt <= 20; attempt++ {
				base := c.Initial
				for i := 1; i < attempt; i++ {
					base *= 2
					if base >= c.Max {
						break
					}
				}
				base = min(base, c.Max)
				lo, hi := base/2, base/2+base // [d/2, 3d/2)
				// Draw several times: the jitter is random.
				for range 50 {
					d := tt.cfg.Delay(attempt)
					if d < lo || d >= hi {
						t.Fatalf("Delay(%d) = %v, want within [%v, %v)", attempt, d, lo, hi)
					}
				}
			}
		})
	}
}

func TestRetryReturnsNilAfterASuccessOnTheThirdAttempt(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), discard(), Config{Initial: time.Millisecond, Max: 2 * time.Millisecond}, "op", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Retry = %v, want nil", err)
	}
	if calls != 3 {
		t.Fatalf("fn called %d times, want 3", calls)
	}
}

func TestRetryStopsAtAttemptsAndReturnsTheLastError(t *testing.T) {
	calls := 0
	var last error
	err := Retry(context.Background(), discard(), Config{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 4}, "op", func(context.Context) error {
		calls++
		last = fmt.Errorf("failure %d", calls)
		return last
	})
	if calls != 4 {
		t.Fatalf("fn called %d times, want 4", calls)
	}
	if err != last {
		t.Fatalf("Retry = %v, want the last error %v", err, last)
	}
}

// cancelOnRetry is a slog handler that cancels a context when Retry logs
// that it is about to wait, so that the cancellation lands during the wait.
type cancelOnRetry struct {
	slog.Handler
	cancel context.CancelFunc
}

func (h cancelOnRetry) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "retrying" {
		h.cancel()
	}
	return nil
}

func TestRetryReturnsTheContextErrorWhenCancelled(t *testing.T) {
	fnErr := errors.New("unavailable")
	tests := []struct {
		name string
		// fromFn cancels inside fn; otherwise the logger cancels once Retry
		// has decided to wait.
		fromFn bool
	}{
		{"cancelled by fn", true},
		{"cancelled while waiting", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			log := discard()
			if !tt.fromFn {
				log = slog.New(cancelOnRetry{Handler: slog.NewTextHandler(io.Discard, nil), cancel: cancel})
			}
			calls := 0
			err := Retry(ctx, log, Config{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}, "op", func(context.Context) error {
				calls++
				if tt.fromFn {
					cancel()
				}
				return fnErr
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Retry = %v, want context.Canceled", err)
			}
			// A wait that ignored ctx would end after a few ms and call fn
			// again.
			if calls != 1 {
				t.Fatalf("fn called %d times, want 1", calls)
			}
		})
	}
}

func TestSleepReportsWhetherTheWholeWaitPassed(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context = false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour: only the ended context can end this wait.
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context = true, want false")
	}
}
