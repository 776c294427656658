package importer

import (
	"strconv"
	"strings"
)

// label turns a keepalived name (VI_1, chk_ocp, ocp_API) into a DNS-1123
// label: lower case, every other character a '-', no leading, trailing or
// repeated '-', at most maxLen characters. An empty result becomes
// fallback.
func label(name, fallback string, maxLen int) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		} else {
			dash = true
		}
	}
	s := b.String()
	if len(s) > maxLen {
		s = strings.TrimRight(s[:maxLen], "-")
	}
	if s == "" {
		return fallback
	}
	return s
}

// uniqueNames hands out DNS-1123 labels that are unique within one list.
type uniqueNames map[string]bool

// take returns name, or name-2, name-3, ... (shortened to fit 63
// characters) if it is taken, and marks the result taken.
func (u uniqueNames) take(name string) string {
	for i := 1; ; i++ {
		n := name
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			n = strings.TrimRight(name[:min(len(name), 63-len(suffix))], "-") + suffix
		}
		if !u[n] {
			u[n] = true
			return n
		}
	}
}
