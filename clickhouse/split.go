package clickhouse

import (
	"fmt"
	"strings"
	"unicode"
)

// statement is one SQL statement of a script, and the line it starts on.
type statement struct {
	SQL  string
	Line int
}

// splitStatements cuts a script into statements at the semicolons that are
// outside string literals ('…'), quoted identifiers ("…" and `…`) and
// comments (-- to the end of the line, /* … */). ClickHouse's native protocol
// runs one statement per query, so a migration file must be cut before it is
// sent.
//
// Each statement comes back without its semicolon, starting at its first
// token (comments before it are dropped) and without trailing space;
// stretches holding only comments and space yield nothing. Inside quotes a
// backslash escapes the next character, as in ClickHouse. An unterminated
// quote or block comment is an error naming the line it starts on.
func splitStatements(script string) ([]statement, error) {
	var (
		out       []statement
		line      = 1
		start     = -1 // offset of the current statement's first token, -1 if none yet
		startLine int
	)
	begin := func(i int) {
		if start < 0 {
			start, startLine = i, line
		}
	}
	flush := func(end int) {
		if start >= 0 {
			out = append(out, statement{
				SQL:  strings.TrimRightFunc(script[start:end], unicode.IsSpace),
				Line: startLine,
			})
		}
		start = -1
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\n':
			line++
		case c == '-' && i+1 < len(script) && script[i+1] == '-':
			end := strings.IndexByte(script[i:], '\n')
			if end < 0 {
				i = len(script)
				continue
			}
			i += end - 1 // the newline itself is counted on the next turn
		case c == '/' && i+1 < len(script) && script[i+1] == '*':
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", line)
			}
			body := script[i : i+2+end+2]
			line += strings.Count(body, "\n")
			i += len(body) - 1
		case c == '\'' || c == '"' || c == '`':
			begin(i)
			n, ok := quotedLen(script[i:])
			if !ok {
				return nil, fmt.Errorf("line %d: unterminated %c quote", line, c)
			}
			line += strings.Count(script[i:i+n], "\n")
			i += n - 1
		case c == ';':
			flush(i)
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
		default:
			begin(i)
		}
	}
	flush(len(script))
	return out, nil
}

// quotedLen returns the length of the quoted token at the start of s, quotes
// included, and false if it does not end. A backslash escapes the next byte;
// a doubled quote ('it”s') reads as two adjacent tokens, which splits the
// same way.
func quotedLen(s string) (int, bool) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1, true
		}
	}
	return 0, false
}
