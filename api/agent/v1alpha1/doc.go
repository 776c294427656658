// Package v1alpha1 holds the agent's configuration file format, apiVersion
// agent.vipvs.io/v1alpha1, kind AgentConfig: the YAML that the operator and
// `vipvs render` write for each node (default path /etc/vipvs/agent.yaml) and
// that the agent reads.
//
// The types are the file format's manual: each field's comment states its
// meaning, allowed values and default. Decode reads a file strictly (unknown
// or mis-cased fields and duplicate keys are errors), SetDefaults fills in
// the defaults, and package github.com/vipvs/vipvs/api/validation checks the
// result; package github.com/vipvs/vipvs/agent/config combines the three.
package v1alpha1
