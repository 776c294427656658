// Package logging builds the logger of the vipvs subcommands from their
// --log-format and -v flags.
package logging

import (
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// NewLogger returns a logr.Logger writing text or JSON lines to w, with
// millisecond timestamps; format is "text" or "json".
func NewLogger(w io.Writer, format string, verbosity int) (logr.Logger, error) {
	opts := funcr.Options{Verbosity: verbosity, LogTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000Z07:00"}
	switch format {
	case "text":
		return funcr.New(func(prefix, args string) {
			if prefix != "" {
				fmt.Fprintf(w, "%s %s\n", prefix, args)
				return
			}
			fmt.Fprintln(w, args)
		}, opts), nil
	case "json":
		return funcr.NewJSON(func(obj string) { fmt.Fprintln(w, obj) }, opts), nil
	}
	return logr.Discard(), fmt.Errorf("invalid --log-format %q: must be text or json", format)
}
