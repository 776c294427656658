package ipvse2e

import (
	"strings"
	"testing"
	"time"
)

func TestConnSyncFiguresMarkdown(t *testing.T) {
	console := strings.Join([]string{
		"=== RUN   TestConnSyncNAT",
		"    connsync_test.go:560: SYNC-FIGURE mode=NAT sync=true kind=hard conns=100 survived=100 longest_ms=3309 took_ms=1736",
		"    connsync_test.go:560: SYNC-FIGURE mode=NAT sync=true kind=graceful conns=100 survived=100 longest_ms=0 took_ms=1443",
		"    connsync_test.go:640: SYNC-FIGURE mode=NAT sync=false kind=hard conns=100 survived=14 longest_ms=5452 took_ms=1906",
		"    connsync_test.go:640: SYNC-FIGURE mode=DR sync=false kind=hard conns=100 survived=0 longest_ms=0 took_ms=1364",
		"    connsync_apivip_test.go:99: SYNC-FIGURE mode=apivip sync=true kind=hard conns=100 survived=34 longest_ms=3138 took_ms=1928",
		"    SYNC-FIGURE mode=NAT sync=maybe kind=hard conns=1 survived=1 longest_ms=1 took_ms=1", // not a figure
	}, "\n")
	f := &ConnSyncFigures{Opts: ConnSyncOptions{Conns: 100}, Kernel: "6.1.0-cloud-amd64", Accel: "tcg",
		Date: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), Took: 5 * time.Minute, Rows: parseConnSync(console)}
	if len(f.Rows) != 5 {
		t.Fatalf("parsed %d rows, want 5: %+v", len(f.Rows), f.Rows)
	}
	md := f.Markdown()
	t.Log("\n" + md)
	for _, want := range []string{
		ConnSyncTitle + "\n\nMade by `make bench`",
		"on 2026-12-07, in one VM run of 5m0s",
		"| NAT | hard failover (the master's link goes down) | 1.7 | 100 of 100 | 3.3 | 14 of 100 |",
		"| NAT | graceful stop (SIGTERM to the master's agent) | 1.4 | 100 of 100 | < 0.4 | not measured |",
		"| DR | hard failover (the master's link goes down) | 1.4 | n/a | n/a | 0 of 100 |",
		"| NAT, API-VIP shape (the directors are the real servers) | hard failover (the master's link goes down) | 1.9 | 34 of 100 | 3.1 | not measured |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "preemption back") {
		t.Error("a row without figures was written")
	}
	doc := "# Benchmarks\n\n## a\n\nx\n\n" + ConnSyncTitle + "\n\nOLDSECTION\n\n## b\n\ny\n"
	got := UpdateConnSyncSection(doc, md)
	if strings.Contains(got, "OLDSECTION") || !strings.Contains(got, "## b\n\ny\n") || !strings.Contains(got, "## a\n\nx\n") {
		t.Errorf("UpdateConnSyncSection:\n%s", got)
	}
}
