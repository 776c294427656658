package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/reference.md differs from what the
// API types generate.
func TestReferenceUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	var buf bytes.Buffer
	if err := write(&buf, root); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "reference.md"))
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("docs/reference.md is out of date: run make docs and commit it")
	}
	// Every field of both APIs is documented.
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "| `") && strings.HasSuffix(l, "|  |") {
			t.Errorf("a field without documentation: %s", l)
		}
	}
}
