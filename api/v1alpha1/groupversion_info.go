// Package v1alpha1 holds the LoadBalancerConfig API, group vipvs.io,
// version v1alpha1: the cluster-level description of a set of virtual IPs
// (VRRP) and the IPVS virtual services behind them, from which the operator
// and `vipvs render` write one agent configuration
// (agent.vipvs.io/v1alpha1 AgentConfig) per selected node.
//
// The types are the API's manual: each field's comment becomes its
// `kubectl explain` text. The CRD (manifests/crd) and zz_generated.deepcopy.go
// are generated from the markers by controller-gen; run `go generate
// ./api/...` after changing a type. The CEL rules in the markers have a Go
// twin in package github.com/vipvs/vipvs/api/validation
// (ValidateLoadBalancerConfig), which `vipvs render` runs without an API
// server; SetDefaults applies the same defaults as the CRD's schema.
//
// +kubebuilder:object:generate=true
// +groupName=vipvs.io
package v1alpha1

//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object crd paths=./... output:crd:artifacts:config=../../manifests/crd

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the LoadBalancerConfig API.
	GroupVersion = schema.GroupVersion{Group: "vipvs.io", Version: "v1alpha1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API's types (LoadBalancerConfig, IPPool and
	// their lists) to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

// addKnownTypes registers the API's types, and the options types of
// metav1 (ListOptions and the like) for the group version.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &LoadBalancerConfig{}, &LoadBalancerConfigList{}, &IPPool{}, &IPPoolList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
