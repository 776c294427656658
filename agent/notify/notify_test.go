package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
)

// script writes an executable shell script that appends its arguments and
// environment to log.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotifyInOrderWithKeepalivedArguments(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	generic := script(t, dir, "generic", `echo "generic $*" >> `+log)
	master := script(t, dir, "master", `echo "master $VIPVS_ROUTER $VIPVS_STATE $VIPVS_PRIORITY $#" >> `+log)
	n := New(Commands{Command: []string{generic, "first-arg"}, Master: []string{master}, Timeout: 5 * time.Second}, testr.New(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	for _, ev := range []Event{
		{"api", "BACKUP", 100}, {"api", "MASTER", 150}, {"ingress", "FAULT", 50}, {"api", "STOP", 150},
	} {
		n.Notify(ev)
	}
	cancel() // Run drains the queue before returning
	<-done
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"generic first-arg INSTANCE api BACKUP 100",
		"generic first-arg INSTANCE api MASTER 150",
		"master api MASTER 150 0",
		"generic first-arg INSTANCE ingress FAULT 50",
		"generic first-arg INSTANCE api STOP 150",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("notify log (-want +got):\n%s", diff)
	}
}

func TestNotifyFailuresAndTimeout(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		wantErr string
	}{
		{name: "ok", body: "exit 0"},
		{name: "non-zero exit", body: "echo boom; exit 3", wantErr: "exited with status 3"},
		{name: "timeout", body: "sleep 30", timeout: 200 * time.Millisecond, wantErr: "timed out after 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []Result
			cmd := script(t, dir, strings.ReplaceAll(tt.name, " ", "-"), tt.body)
			n := New(Commands{Command: []string{cmd}, Timeout: tt.timeout}, testr.New(t), func(r Result) {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
			})
			ctx, cancel := context.WithCancel(context.Background())
			n.Notify(Event{"api", "MASTER", 100})
			start := time.Now()
			cancel()
			n.Run(ctx)
			if time.Since(start) > 10*time.Second {
				t.Fatalf("run took %v, the timeout did not bound it", time.Since(start))
			}
			if len(got) != 1 {
				t.Fatalf("%d results, want 1", len(got))
			}
			err := got[0].Err
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	n := New(Commands{Command: []string{"/bin/true"}}, testr.New(t), nil)
	// Nobody runs the queue: Notify must still return, and count the overflow.
	for i := 0; i < queueSize+10; i++ {
		n.Notify(Event{"api", "MASTER", 100})
	}
	if d := n.droppedEvents(); d != 10 {
		t.Errorf("dropped %d, want 10", d)
	}
}
