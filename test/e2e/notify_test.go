package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestNotifyHooks: the agent runs the keepalived-style notify command on
// each transition, in order, with INSTANCE <name> <STATE> <priority>, and the
// per-state command with its environment.
func TestNotifyHooks(t *testing.T) {
	vip := vip4
	router := agentlab.Router{Name: "api", VRID: 58, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
	c := setup(t, router)
	dir := t.TempDir()
	out := filepath.Join(dir, "notify.log")
	script := filepath.Join(dir, "notify.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+out+"\n"), 0o755))
	master := filepath.Join(dir, "master.sh")
	must(t, os.WriteFile(master, []byte("#!/bin/sh\necho \"notify_master $VIPVS_ROUTER $VIPVS_STATE $VIPVS_PRIORITY\" >> "+out+"\n"), 0o755))

	n1 := c.Agents[0]
	cfg := c.Config(1, router)
	cfg.Notify = &v1alpha1.Notify{Command: []string{script}, Master: []string{master}}
	must(t, n1.WriteConfig(cfg))
	must(t, c.Start())
	must(t, c.WaitMaster("api", n1, vip.Addr(), 10*time.Second))
	must(t, n1.Signal(syscall.SIGTERM))
	_, err := n1.Proc.Wait(10 * time.Second)
	must(t, err)

	want := []string{
		"INSTANCE api BACKUP 150",
		"INSTANCE api MASTER 150",
		"notify_master api MASTER 150",
		"INSTANCE api STOP 150",
	}
	var got []string
	must(t, lab.WaitFor(5*time.Second, "four notify lines", func() (bool, error) {
		b, err := os.ReadFile(out)
		if err != nil {
			return false, nil
		}
		got = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(got) >= len(want), nil
	}))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notify lines (-want +got):\n%s", diff)
	}
}
