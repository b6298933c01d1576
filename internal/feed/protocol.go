package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// filter chooses the counts a client receives: one account, or all when
// account is nil; always within scope, the accounts its token covers (nil:
// every account).
type filter struct {
	account *int64
	scope   accountScope
}

func (f filter) match(c Count) bool {
	return (f.account == nil || *f.account == c.AccountID) && f.scope.allows(c.AccountID)
}

func (f filter) String() string {
	switch {
	case f.account != nil:
		return "account " + strconv.FormatInt(*f.account, 10)
	case f.scope != nil:
		return "accounts " + f.scope.String()
	}
	return "all"
}

// msgKind is what a client's message asks for.
type msgKind int

const (
	msgSetFilter msgKind = iota + 1
	msgClose
)

type clientMsg struct {
	kind   msgKind
	filter filter
}

// parseClientMessage reads a client's text message: the word "close"
// (surrounding white space ignored) or
// {"type":"setFilter","filter":{"account":<integer or null>}}. An empty
// filter object, or a null account, clears the filter. Any other message is
// an error, whose text the client receives in an error frame; the account
// must be a JSON integer (not a string), and unknown filter fields are
// refused so that a typo does not silently clear the filter.
func parseClientMessage(data []byte) (clientMsg, error) {
	trimmed := bytes.TrimSpace(data)
	if string(trimmed) == "close" {
		return clientMsg{kind: msgClose}, nil
	}
	var m struct {
		Type   *string                     `json:"type"`
		Filter map[string]*json.RawMessage `json:"filter"`
	}
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return clientMsg{}, errors.New(`message is neither "close" nor a JSON object`)
	}
	if m.Type == nil {
		return clientMsg{}, errors.New(`message has no "type"`)
	}
	if *m.Type != "setFilter" {
		return clientMsg{}, fmt.Errorf("unknown message type %q (want setFilter)", *m.Type)
	}
	if m.Filter == nil {
		return clientMsg{}, errors.New(`setFilter needs a "filter" object`)
	}
	var f filter
	for name, raw := range m.Filter {
		if name != "account" {
			return clientMsg{}, fmt.Errorf("unknown filter field %q (only account)", name)
		}
		if raw == nil { // "account": null
			continue
		}
		id, err := strconv.ParseInt(string(*raw), 10, 64)
		if err != nil {
			return clientMsg{}, fmt.Errorf("filter account must be an integer or null, got %s", *raw)
		}
		f.account = &id
	}
	return clientMsg{kind: msgSetFilter, filter: f}, nil
}

// errorFrame is the frame sent back for a message the server did not
// understand: {"type":"error","error":"..."}.
func errorFrame(msg string) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{"error", msg})
	return b
}
