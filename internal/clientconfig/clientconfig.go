// Package clientconfig loads the client configuration of the vipvs
// subcommands that talk to the API server (operator, node, hack/install).
package clientconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
)

// Load loads the client configuration from the kubeconfig at path, or
// from the usual places (in-cluster, $KUBECONFIG, ~/.kube/config) when path
// is empty.
func Load(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := config.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("loading the kubeconfig: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
