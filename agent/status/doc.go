// Package status serves the agent's state: /healthz, /readyz, /metrics and a
// JSON status document over HTTP, and the same JSON over a unix socket that
// `vipvs status` and the node companion read. It also holds the client for
// that socket.
package status
