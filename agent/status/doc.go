// Package status serves the agent's state: /healthz, /readyz, /metrics and
// the JSON status document over HTTP, and the same over a unix socket that
// `vipvs status` and the node companion read. The document is the status
// contract's AgentReport (package github.com/vipvs/vipvs/api/status/v1alpha1,
// aliased here as Report, Router, ...); GET /status follows its watch
// protocol (ETag, If-None-Match and wait: the answer comes when the report
// changes). The package also holds the client (Fetch, Watch) and
// `vipvs status` (Command), which without --socket reads every agent socket
// of the node in /run/vipvs.
package status
