package query

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats are the output formats Result.Write accepts; the first is the
// default, also chosen by "".
var Formats = []string{"table", "json", "csv"}

// ValidFormat reports whether Result.Write accepts format, so that a command
// can reject a bad --format before it queries anything.
func ValidFormat(format string) error {
	if format != "" && !slices.Contains(Formats, format) {
		return fmt.Errorf("unknown format %q: want one of %s", format, strings.Join(Formats, ", "))
	}
	return nil
}

// Result is the answer to a query: named columns and rows of values. A value
// is a string, an integer, a time.Time (UTC) or nil for NULL.
type Result struct {
	Columns []string
	Rows    [][]any
}

// Write prints r to w in format, one of Formats:
//
//   - "table" (also ""): aligned columns under a header and a rule, numbers
//     right-aligned, then a count such as "(3 rows)"; an empty result prints
//     the header and "(0 rows)". Times are RFC 3339 UTC, NULL is null.
//   - "json": an array of objects keyed by column name, one object per line;
//     numbers as JSON numbers, times as RFC 3339 UTC strings, NULL as null.
//     An empty result is [].
//   - "csv": a header row then the rows (encoding/csv); times RFC 3339 UTC,
//     NULL as an empty field.
func (r *Result) Write(w io.Writer, format string) error {
	if err := ValidFormat(format); err != nil {
		return err
	}
	var err error
	switch format {
	case "json":
		err = r.writeJSON(w)
	case "csv":
		err = r.writeCSV(w)
	default:
		err = r.writeTable(w)
	}
	if err != nil {
		return fmt.Errorf("write %s result: %w", cmp.Or(format, "table"), err)
	}
	return nil
}

// text renders a value for table and CSV output.
func text(v any, null string) string {
	switch v := v.(type) {
	case nil:
		return null
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	default:
		return fmt.Sprint(v)
	}
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return true
	}
	return false
}

func (r *Result) writeTable(w io.Writer) error {
	cells := make([][]string, 0, len(r.Rows)+1)
	cells = append(cells, r.Columns)
	for _, row := range r.Rows {
		line := make([]string, len(r.Columns))
		for i := range line {
			if i < len(row) {
				line[i] = text(row[i], "null")
			}
		}
		cells = append(cells, line)
	}
	// A column is right-aligned when every non-NULL value in it is a number
	// and there is at least one.
	width := make([]int, len(r.Columns))
	right := make([]bool, len(r.Columns))
	for i := range r.Columns {
		numbers, others := 0, 0
		for _, row := range r.Rows {
			switch {
			case i >= len(row) || row[i] == nil:
			case isNumber(row[i]):
				numbers++
			default:
				others++
			}
		}
		right[i] = numbers > 0 && others == 0
		for _, line := range cells {
			width[i] = max(width[i], utf8.RuneCountInString(line[i]))
		}
	}

	var b bytes.Buffer
	writeLine := func(line []string) {
		var l strings.Builder
		for i, c := range line {
			if i > 0 {
				l.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if right[i] {
				l.WriteString(pad + c)
			} else {
				l.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	writeLine(cells[0])
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	writeLine(rule)
	for _, line := range cells[1:] {
		writeLine(line)
	}
	if len(r.Rows) == 1 {
		b.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(&b, "(%d rows)\n", len(r.Rows))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func (r *Result) writeJSON(w io.Writer) error {
	if len(r.Rows) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	put := func(v any) error {
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode ends with a newline
		return nil
	}
	b.WriteString("[\n")
	for n, row := range r.Rows {
		b.WriteString("  {")
		for i, col := range r.Columns {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := put(col); err != nil {
				return err
			}
			b.WriteByte(':')
			var v any
			if i < len(row) {
				v = row[i]
			}
			if err := put(v); err != nil {
				return fmt.Errorf("column %s: %w", col, err)
			}
		}
		b.WriteByte('}')
		if n < len(r.Rows)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	_, err := w.Write(b.Bytes())
	return err
}

func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	line := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i := range line {
			line[i] = ""
			if i < len(row) {
				line[i] = text(row[i], "")
			}
		}
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
