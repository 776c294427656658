package clientconfig

import (
	"strings"
	"testing"
)

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("/nonexistent/kubeconfig"); err == nil || !strings.Contains(err.Error(), "loading the kubeconfig /nonexistent/kubeconfig") {
		t.Errorf("Load(missing) error = %v", err)
	}
}
