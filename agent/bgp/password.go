package bgp

import "github.com/vipvs/vipvs/agent/bgp/wire"

// MaxPasswordLength is the longest TCP MD5 key Linux accepts
// (TCP_MD5SIG_MAXKEYLEN).
const MaxPasswordLength = wire.MaxPasswordLength

// ReadPassword reads a peer's TCP MD5 key from a file: see
// [wire.ReadPassword], which the agent (which does not link this package)
// uses.
func ReadPassword(path string) (string, error) { return wire.ReadPassword(path) }
