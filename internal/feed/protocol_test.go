package feed

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
)

func TestParseClientMessageAcceptsCloseAndSetFilter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kind    msgKind
		account *int64
	}{
		{"close", "close", msgClose, nil},
		{"close with newline", "close\n", msgClose, nil},
		{"filter account", `{"type":"setFilter","filter":{"account":7}}`, msgSetFilter, i64(7)},
		{"negative account", `{"type":"setFilter","filter":{"account":-3}}`, msgSetFilter, i64(-3)},
		{"clear with empty filter", `{"type":"setFilter","filter":{}}`, msgSetFilter, nil},
		{"clear with null account", `{"type":"setFilter","filter":{"account":null}}`, msgSetFilter, nil},
		{"extra top-level field ignored", `{"type":"setFilter","filter":{"account":1},"id":9}`, msgSetFilter, i64(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseClientMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseClientMessage = %v", err)
			}
			if m.kind != tt.kind {
				t.Errorf("kind = %d, want %d", m.kind, tt.kind)
			}
			switch {
			case tt.account == nil && m.filter.account != nil:
				t.Errorf("account = %d, want none", *m.filter.account)
			case tt.account != nil && (m.filter.account == nil || *m.filter.account != *tt.account):
				t.Errorf("account = %v, want %d", m.filter.account, *tt.account)
			}
		})
	}
}

func TestParseClientMessageNamesWhatItRefuses(t *testing.T) {
	refused := map[string]struct{ in, wantErr string }{
		"string account":       {`{"type":"setFilter","filter":{"account":"7"}}`, "integer or null"},
		"float account":        {`{"type":"setFilter","filter":{"account":7.5}}`, "integer or null"},
		"huge account":         {`{"type":"setFilter","filter":{"account":99999999999999999999}}`, "integer or null"},
		"unknown filter field": {`{"type":"setFilter","filter":{"acount":7}}`, `unknown filter field "acount"`},
		"null filter":          {`{"type":"setFilter","filter":null}`, `"filter" object`},
		"no filter":            {`{"type":"setFilter"}`, `"filter" object`},
		"unknown type":         {`{"type":"subscribe"}`, `unknown message type "subscribe"`},
		"no type":              {`{"filter":{}}`, `no "type"`},
		"not json":             {`hello`, "neither"},
		"CLOSE is not close":   {`CLOSE`, "neither"},
		"array":                {`[1,2]`, "neither"},
	}
	for name, tt := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := parseClientMessage([]byte(tt.in))
			testenv.CheckErr(t, "parseClientMessage", err, tt.wantErr)
		})
	}
}

func TestErrorFrame(t *testing.T) {
	var got map[string]string
	if err := json.Unmarshal(errorFrame(`bad "x"`), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != "error" || got["error"] != `bad "x"` || len(got) != 2 {
		t.Errorf("error frame = %v", got)
	}
}

func TestOriginAllowed(t *testing.T) {
	const host = "feed:6066" // the server's own
	tests := map[string]struct {
		origin  string
		allowed []string
		want    bool
	}{
		"no origin (CLI)":                     {"", nil, true},
		"same host":                           {"http://feed:6066", nil, true},
		"same host other case":                {"http://FEED:6066", nil, true},
		"same host https":                     {"https://feed:6066", nil, true},
		"other port":                          {"http://feed:6067", nil, false},
		"other host":                          {"http://evil.example", nil, false},
		"null origin":                         {"null", nil, false},
		"garbage":                             {"::::", nil, false},
		"star":                                {"http://evil.example", []string{"*"}, true},
		"star allows null":                    {"null", []string{"*"}, true},
		"listed full origin":                  {"https://dash.example", []string{"https://dash.example"}, true},
		"listed full origin trailing slash":   {"https://dash.example", []string{"https://dash.example/"}, true},
		"listed origin other scheme":          {"http://dash.example", []string{"https://dash.example"}, false},
		"listed host":                         {"http://dash.example:8080", []string{"dash.example:8080"}, true},
		"listed host other port":              {"http://dash.example:8081", []string{"dash.example:8080"}, false},
		"listed host does not match suffix":   {"http://evil-dash.example", []string{"dash.example"}, false},
		"same host still allowed with a list": {"http://feed:6066", []string{"dash.example"}, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := originAllowed(tt.origin, host, tt.allowed); got != tt.want {
				t.Errorf("originAllowed(%q, %q, %q) = %v, want %v", tt.origin, host, tt.allowed, got, tt.want)
			}
		})
	}
}

func TestHistoryParam(t *testing.T) {
	f, err := New(Config{HistoryWindows: 5, MaxHistory: 100}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  int
		ok    bool
	}{
		{"", 5, true},
		{"history=0", 0, true},
		{"history=100", 100, true},
		{"history=101", 0, false},
		{"history=-1", 0, false},
		{"history=ten", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got, err := f.historyParam(q)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("historyParam(%q) = %d, %v; want %d, ok %v", tt.query, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestConfigValidateAndNewNameTheSettingThatCannotWork(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"defaults":            {Config{}, ""},
		"bad broker":          {Config{Brokers: []string{"nohost"}}, "host:port"},
		"bad topic":           {Config{Topic: "a b"}, "topic"},
		"negative ring":       {Config{RingSize: -1}, "ring size"},
		"history over max":    {Config{HistoryWindows: 20, MaxHistory: 10}, "history windows"},
		"pong not after ping": {Config{PingInterval: time.Second, PongWait: time.Second}, "pong wait"},
		"tiny read limit":     {Config{ReadLimit: 10}, "read limit"},
		"empty origin":        {Config{AllowedOrigins: []string{""}}, "empty entry"},
		"negative queue":      {Config{SendQueue: -1}, "send queue"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate", tt.cfg.WithDefaults().Validate(), tt.wantErr)
			// New refuses what Validate refuses.
			_, err := New(tt.cfg, nil, nil, nil)
			testenv.CheckErr(t, "New", err, tt.wantErr)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Topic != "active-visitors" || c.Replay != 10*time.Minute || c.RingSize != 10000 || c.HistoryWindows != 30 ||
		c.MaxHistory != 1000 || c.MaxClients != 1000 || c.ReadLimit != 4096 || c.SendQueue != 256 ||
		c.PingInterval != 20*time.Second || c.PongWait != 30*time.Second || c.WriteTimeout != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
}
