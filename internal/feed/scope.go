package feed

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/domination/domination/internal/auth"
)

// closeOutOfScope is the close code a scoped client receives for a
// setFilter naming an account its token does not cover (the application
// range 4000-4999; 4403 echoes HTTP 403).
const closeOutOfScope = 4403

// reasonScope counts, in domination_feed_clients_dropped_total, the
// clients closed for a filter outside their scope.
const reasonScope = "scope"

// accountScope is the accounts a client's token covers, sorted; nil means
// every account (an open server, or a token with accounts=*).
type accountScope []int64

// scopeOf returns the scope of the token the web server authenticated r
// with, and false for a token that covers no account at all (which the web
// server refuses before this point).
func scopeOf(r *http.Request) (accountScope, bool) {
	tok, ok := auth.FromContext(r.Context())
	if !ok || tok.Scope.AllAccounts {
		return nil, true
	}
	if len(tok.Scope.Accounts) == 0 {
		return nil, false
	}
	return accountScope(tok.Scope.Accounts), true
}

func (s accountScope) allows(account int64) bool {
	if s == nil {
		return true
	}
	_, ok := slices.BinarySearch(s, account)
	return ok
}

func (s accountScope) String() string {
	ids := make([]string, len(s))
	for i, a := range s {
		ids[i] = strconv.FormatInt(a, 10)
	}
	return strings.Join(ids, ",")
}

// AccountsHistory is implemented by a History that can read the recent
// counts of a set of accounts in one request, as NewClickHouseHistory's
// does. Without it a scoped client's history takes one Recent per account.
type AccountsHistory interface {
	// RecentAccounts returns the last n counts of the given accounts, one
	// per (account, store, window start), oldest first.
	RecentAccounts(ctx context.Context, accounts []int64, n int) ([]Count, error)
}

// recentFor reads the stored history matching f: one account, the
// accounts of a scope, or every account. Whatever the History returns,
// only counts f matches are kept.
func recentFor(ctx context.Context, h History, f filter, n int) ([]Count, error) {
	var (
		out []Count
		err error
	)
	switch {
	case f.account != nil || f.scope == nil:
		out, err = h.Recent(ctx, f.account, n)
	default:
		if ah, ok := h.(AccountsHistory); ok {
			out, err = ah.RecentAccounts(ctx, f.scope, n)
			break
		}
		for _, a := range f.scope {
			var part []Count
			if part, err = h.Recent(ctx, &a, n); err != nil {
				break
			}
			for _, c := range part {
				if c.AccountID == a {
					out = append(out, c)
				}
			}
		}
		slices.SortFunc(out, compareCounts)
		out = lastN(out, n)
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(c Count) bool { return !f.match(c) }), nil
}

// RecentAccounts returns the last n windows of the accounts, oldest first.
// Every account is a bound value.
func (h *clickHouseHistory) RecentAccounts(ctx context.Context, accounts []int64, n int) ([]Count, error) {
	if n <= 0 || len(accounts) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(accounts)), ", ")
	args := make([]any, 0, len(accounts))
	for _, a := range accounts {
		args = append(args, a)
	}
	return h.recent(ctx, fmt.Sprintf("active_visitors of %d accounts", len(accounts)), "WHERE account_id IN ("+marks+")", args, n)
}

// inScope reports whether f stays within the client's scope; a filter
// outside it closes the client with 4403, so that a client never believes
// it is watching an account that it is in fact not shown.
func (c *client) inScope(f filter) bool {
	if f.account == nil || c.scope.allows(*f.account) {
		return true
	}
	c.f.log.Info("feed client closed: filter outside its token's scope", "account", *f.account, "scope", c.scope.String(), "remote", c.conn.RemoteAddr().String())
	c.f.hub.remove(c.sub, reasonScope, closeOutOfScope, "account "+strconv.FormatInt(*f.account, 10)+" is outside this token's scope")
	return false
}
