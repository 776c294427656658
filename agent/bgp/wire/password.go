package wire

import (
	"bytes"
	"fmt"
	"os"
)

// MaxPasswordLength is the longest TCP MD5 key Linux accepts
// (TCP_MD5SIG_MAXKEYLEN).
const MaxPasswordLength = 80

// ReadPassword reads a peer's TCP MD5 key from a file (a Secret mounted as
// a file): the whole content without one trailing newline ("\n" or
// "\r\n"), 1 to MaxPasswordLength bytes. The error names the file, never
// the key. The agent reads the files and passes the keys in [Config].
func ReadPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bgp password file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("bgp password file %s: empty: write the TCP MD5 key into it, or remove passwordFile", path)
	case len(b) > MaxPasswordLength:
		return "", fmt.Errorf("bgp password file %s: the key is %d bytes, TCP MD5 keys are at most %d", path, len(b), MaxPasswordLength)
	}
	return string(b), nil
}
