// Package validation checks the LoadBalancerConfig (vipvs.io/v1alpha1). It
// is the one validation of that API: `vipvs render` and the operator call
// the same functions, so every entry point rejects the same input with the
// same message, and each message names the field path, the value and what
// is allowed (k8s.io/apimachinery/pkg/util/validation/field). The agent's
// own file is checked by api/agent/validation, which shares its address
// families, interface names and interval limits with this package.
package validation
