package logging

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var text strings.Builder
	log, err := NewLogger(&text, "text", 0)
	if err != nil {
		t.Fatal(err)
	}
	log.WithName("vrrp").Info("state changed", "to", "Active")
	log.V(1).Info("hidden")
	if got := text.String(); !strings.HasPrefix(got, "vrrp ") || !strings.Contains(got, `"msg"="state changed" "to"="Active"`) || strings.Contains(got, "hidden") {
		t.Errorf("text log = %q", got)
	}

	var js strings.Builder
	if log, err = NewLogger(&js, "json", 1); err != nil {
		t.Fatal(err)
	}
	log.V(1).Info("shown", "n", 1)
	var m map[string]any
	if err := json.Unmarshal([]byte(js.String()), &m); err != nil || m["msg"] != "shown" {
		t.Errorf("json log = %q (%v)", js.String(), err)
	}

	if _, err := NewLogger(&text, "yaml", 0); err == nil || !strings.Contains(err.Error(), `invalid --log-format "yaml": must be text or json`) {
		t.Errorf("NewLogger(yaml) error = %v", err)
	}
}
