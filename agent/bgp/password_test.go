package bgp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	tests := []struct {
		name, content string
		want          string
		wantErr       string
	}{
		{name: "plain", content: "s3cret", want: "s3cret"},
		{name: "trailing newline", content: "s3cret\n", want: "s3cret"},
		{name: "CRLF", content: "s3cret\r\n", want: "s3cret"},
		{name: "only one newline removed", content: "s3cret\n\n", want: "s3cret\n"},
		{name: "inner spaces kept", content: " a b ", want: " a b "},
		{name: "80 bytes", content: strings.Repeat("k", 80), want: strings.Repeat("k", 80)},
		{name: "81 bytes", content: strings.Repeat("k", 81), wantErr: "81 bytes"},
		{name: "empty", content: "", wantErr: "empty"},
		{name: "newline only", content: "\n", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPassword(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("ReadPassword() = %q, %v; want an error naming %s and containing %q", got, err, path, tt.wantErr)
				}
				if strings.Contains(err.Error(), "kkkk") {
					t.Errorf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadPassword() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ReadPassword(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadPassword(missing file) = nil error")
	}
}
