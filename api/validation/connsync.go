package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	agentvalidation "github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// validateLBConnectionSync checks spec.connectionSync of a
// LoadBalancerConfig: the same rules as the agent's ipvs.connectionSync,
// which it is rendered into.
func validateLBConnectionSync(p *field.Path, cs *v1alpha1.ConnectionSync) field.ErrorList {
	if cs == nil {
		return nil
	}
	return agentvalidation.ValidateConnectionSync(p, &agentv1alpha1.ConnectionSync{
		Enabled: cs.Enabled, Interface: cs.Interface, SyncID: cs.SyncID,
		MulticastGroup: cs.MulticastGroup, Port: cs.Port, TTL: cs.TTL,
	})
}
