package validation

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// ValidateConnectionSync checks ipvs.connectionSync.
func ValidateConnectionSync(p *field.Path, cs *agentv1alpha1.ConnectionSync) field.ErrorList {
	if cs == nil {
		return nil
	}
	var errs field.ErrorList
	if cs.Interface != "" {
		errs = append(errs, ValidateInterfaceName(p.Child("interface"), cs.Interface)...)
	}
	if id := cs.SyncID; id != nil && (*id < 0 || *id > 255) {
		errs = append(errs, field.Invalid(p.Child("syncID"), *id, "must be between 0 and 255 (0: the backups accept every sync ID)"))
	}
	if g := cs.MulticastGroup; g != "" {
		a, err := netip.ParseAddr(g)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child("multicastGroup"), g, "must be an IPv4 or IPv6 multicast address, e.g. 224.0.0.81 or ff02::81"))
		case !a.IsMulticast() || a.Zone() != "" || a.Is4In6():
			errs = append(errs, field.Invalid(p.Child("multicastGroup"), g, "must be a multicast address (224.0.0.0/4 or ff00::/8), without a zone: the kernel's sync protocol is multicast only"))
		}
	}
	if port := cs.Port; port != nil && (*port < 1 || *port > 65535) {
		errs = append(errs, field.Invalid(p.Child("port"), *port, "must be between 1 and 65535"))
	}
	if ttl := cs.TTL; ttl != nil && (*ttl < 1 || *ttl > 255) {
		errs = append(errs, field.Invalid(p.Child("ttl"), *ttl, fmt.Sprintf("must be between 1 and 255 (default %d: the directors share a segment)", agentv1alpha1.DefaultConnectionSyncTTL)))
	}
	return errs
}
