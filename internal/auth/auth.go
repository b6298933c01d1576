// Package auth holds the web server's credentials: bearer tokens, each
// with a name (what logs show) and a scope (the accounts it may see, and
// whether it may read /metrics), and the request context that carries the
// scope from the web server to the handlers that limit their data to it
// (the live feed, the dashboard, the status report).
//
// # Token list format
//
// One token per line (or per ';'-separated entry, for an environment
// variable):
//
//	<name> <token> <scope> [<scope>...]
//
// where a scope is accounts=<id>[,<id>...] (those accounts only),
// accounts=* (every account) or metrics (GET /metrics). Blank lines and
// lines starting with # are ignored. A token is at least MinTokenLength
// characters of printable ASCII without spaces; names are unique. Parse
// errors name the line and the token's name, never the token.
//
// Tokens are kept as SHA-256 digests and compared in constant time; a
// Token's secret never leaves this package.
package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
)

// MinTokenLength is the shortest token accepted.
const MinTokenLength = 16

// Scope is what a token may read.
type Scope struct {
	// AllAccounts allows every account.
	AllAccounts bool
	// Accounts are the accounts allowed when AllAccounts is false, sorted,
	// without repeats.
	Accounts []int64
	// Metrics allows GET /metrics.
	Metrics bool
}

// HasAccounts reports whether the scope allows any account's data.
func (s Scope) HasAccounts() bool { return s.AllAccounts || len(s.Accounts) > 0 }

// Allows reports whether the scope allows account's data.
func (s Scope) Allows(account int64) bool {
	if s.AllAccounts {
		return true
	}
	_, ok := slices.BinarySearch(s.Accounts, account)
	return ok
}

// String describes the scope for logs: "accounts=1,2 metrics".
func (s Scope) String() string {
	var parts []string
	switch {
	case s.AllAccounts:
		parts = append(parts, "accounts=*")
	case len(s.Accounts) > 0:
		ids := make([]string, len(s.Accounts))
		for i, a := range s.Accounts {
			ids[i] = strconv.FormatInt(a, 10)
		}
		parts = append(parts, "accounts="+strings.Join(ids, ","))
	}
	if s.Metrics {
		parts = append(parts, "metrics")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// Token is one credential: its name and scope. The secret itself is held
// only as a digest.
type Token struct {
	Name  string
	Scope Scope
	hash  [sha256.Size]byte
}

// Tokens is a set of credentials. The zero value and nil hold none: a
// server with no tokens is open.
type Tokens struct {
	list []Token
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// Names lists the tokens' names with their scopes, for a start-up log line.
func (t *Tokens) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.list))
	for i, tok := range t.list {
		out[i] = tok.Name + " (" + tok.Scope.String() + ")"
	}
	return out
}

// MetricsProtected reports whether some token may read /metrics.
func (t *Tokens) MetricsProtected() bool {
	if t == nil {
		return false
	}
	for _, tok := range t.list {
		if tok.Scope.Metrics {
			return true
		}
	}
	return false
}

// Lookup returns the token whose secret is secret. Every token is compared,
// in constant time, whatever matches.
func (t *Tokens) Lookup(secret string) (Token, bool) {
	if t == nil || secret == "" {
		return Token{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return t.list[found], true
}

// Merge returns the tokens of t and u together; a name in both is an error.
func (t *Tokens) Merge(u *Tokens) (*Tokens, error) {
	out := &Tokens{}
	for _, set := range []*Tokens{t, u} {
		if set == nil {
			continue
		}
		for _, tok := range set.list {
			if err := out.add(tok); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (t *Tokens) add(tok Token) error {
	for _, o := range t.list {
		if o.Name == tok.Name {
			return fmt.Errorf("token name %q is used twice", tok.Name)
		}
		if o.hash == tok.hash {
			return fmt.Errorf("tokens %q and %q are the same secret", o.Name, tok.Name)
		}
	}
	t.list = append(t.list, tok)
	return nil
}

// New returns one token; the error never contains secret.
func New(name, secret string, scope Scope) (Token, error) {
	if name == "" || strings.ContainsAny(name, " \t;") {
		return Token{}, fmt.Errorf("token name %q must be non-empty, without spaces or ';'", name)
	}
	if len(secret) < MinTokenLength {
		return Token{}, fmt.Errorf("token %q is shorter than %d characters", name, MinTokenLength)
	}
	for _, r := range secret {
		if r <= ' ' || r > '~' {
			return Token{}, fmt.Errorf("token %q holds a character that is not printable ASCII", name)
		}
	}
	if !scope.HasAccounts() && !scope.Metrics {
		return Token{}, fmt.Errorf("token %q has no scope (accounts=..., accounts=* or metrics)", name)
	}
	scope.Accounts = slices.Compact(slices.Sorted(slices.Values(scope.Accounts)))
	return Token{Name: name, Scope: scope, hash: sha256.Sum256([]byte(secret))}, nil
}

// Parse reads a token list (see the package doc). where names the source
// in errors ("tokens file x", "DOMINATION_WEB_TOKENS").
func Parse(r io.Reader, where string) (*Tokens, error) {
	out := &Tokens{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		for _, entry := range strings.Split(sc.Text(), ";") {
			entry = strings.TrimSpace(entry)
			if entry == "" || strings.HasPrefix(entry, "#") {
				continue
			}
			tok, err := parseEntry(entry)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", where, line, err)
			}
			if err := out.add(tok); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", where, line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", where, err)
	}
	return out, nil
}

// ParseFile reads a token list from a file.
func ParseFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open tokens file: %w", err)
	}
	defer f.Close()
	return Parse(f, "tokens file "+path)
}

func parseEntry(entry string) (Token, error) {
	fields := strings.Fields(entry)
	if len(fields) < 3 {
		name := "?"
		if len(fields) > 0 {
			name = fields[0]
		}
		return Token{}, fmt.Errorf("token %q: want <name> <token> <scope>..., got %d fields", name, len(fields))
	}
	name, secret := fields[0], fields[1]
	var scope Scope
	for _, s := range fields[2:] {
		switch {
		case s == "metrics":
			scope.Metrics = true
		case s == "accounts=*":
			scope.AllAccounts = true
		case strings.HasPrefix(s, "accounts="):
			for _, id := range strings.Split(strings.TrimPrefix(s, "accounts="), ",") {
				a, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
				if err != nil {
					return Token{}, fmt.Errorf("token %q: account %q is not an integer", name, id)
				}
				scope.Accounts = append(scope.Accounts, a)
			}
		default:
			return Token{}, fmt.Errorf("token %q: unknown scope %q (accounts=<ids>, accounts=* or metrics)", name, s)
		}
	}
	return New(name, secret, scope)
}

// Single returns a set of one token.
func Single(tok Token) *Tokens { return &Tokens{list: []Token{tok}} }

// ErrNoToken is returned by FromRequest for a request that carries none.
var ErrNoToken = errors.New("no bearer token")

// FromRequest returns the bearer token of r: the Authorization header
// ("Bearer <token>"), or, for browsers, whose WebSocket API cannot set
// headers, the access_token query parameter.
func FromRequest(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", errors.New("authorization header is not a bearer token")
		}
		return strings.TrimSpace(tok), nil
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok, nil
	}
	return "", ErrNoToken
}

type ctxKey struct{}

// WithToken returns ctx carrying the authenticated token's name and scope.
func WithToken(ctx context.Context, tok Token) context.Context {
	return context.WithValue(ctx, ctxKey{}, tok)
}

// FromContext returns the token a request was authenticated with; false
// when the server is open (no tokens configured), so every account is
// allowed.
func FromContext(ctx context.Context) (Token, bool) {
	tok, ok := ctx.Value(ctxKey{}).(Token)
	return tok, ok
}
