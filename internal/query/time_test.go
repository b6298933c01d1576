package query

import (
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	nowUTC := now.UTC()
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"1h", nowUTC.Add(-time.Hour)},
		{"90m", nowUTC.Add(-90 * time.Minute)},
		{" 10s ", nowUTC.Add(-10 * time.Second)},
		{"0s", nowUTC},
		{"+2h", nowUTC.Add(-2 * time.Hour)},
		{"7d", nowUTC.Add(-7 * 24 * time.Hour)},
		{"1d12h", nowUTC.Add(-36 * time.Hour)},
		{"1d12h30m", nowUTC.Add(-36*time.Hour - 30*time.Minute)},
		{"0d", nowUTC},
		{"2026-11-23T10:00:00Z", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{"2026-11-23T12:00:00+02:00", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{"2026-11-23T10:00:00.25Z", time.Date(2026, 11, 23, 10, 0, 0, 250e6, time.UTC)},
		{"2026-11-23 10:00:00", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{"2026-11-23", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
		{"1795428000", time.Unix(1795428000, 0).UTC()},
		{"0", time.Unix(0, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, now)
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if !got.IsZero() && got.Location() != time.UTC {
				t.Errorf("ParseTime(%q) location = %v, want UTC", tt.in, got.Location())
			}
		})
	}
}

func TestParseTimeRejects(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		errHas  string
		explain string
	}{
		{"-1h", "negative duration", "negative duration"},
		{"-7d", "negative duration", "negative days"},
		{"1d-2h", "want a duration", "sign after days"},
		{"yesterday", "want a duration", "word"},
		{"1.5d", "want a duration", "fractional days"},
		{"7dd", "want a duration", "double unit"},
		{"5", "", "digits are unix seconds, not an error"},
		{"2026-11-23T10:00:00", "want a duration", "RFC 3339 without zone"},
		{"2026-13-01", "want a duration", "month 13"},
		{"99999999999999999999", "out of range", "unix seconds overflow"},
		{"999999999999d", "want a duration", "days overflow"},
		{"1h xyz", "want a duration", "trailing junk"},
	}
	for _, tt := range tests {
		t.Run(tt.explain, func(t *testing.T) {
			_, err := ParseTime(tt.in, now)
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("ParseTime(%q): %v", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseTime(%q) succeeded, want an error", tt.in)
			}
			if !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
				t.Errorf("ParseTime(%q) error = %q, want it to name the value and contain %q", tt.in, err, tt.errHas)
			}
		})
	}
}

func TestCeilSecondRoundsFractionsUp(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if got := ceilSecond(base); !got.Equal(base) {
		t.Errorf("ceilSecond(whole) = %v, want %v", got, base)
	}
	if got := ceilSecond(base.Add(time.Nanosecond)); !got.Equal(base.Add(time.Second)) {
		t.Errorf("ceilSecond(+1ns) = %v, want %v", got, base.Add(time.Second))
	}
}
