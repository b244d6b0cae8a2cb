package cluster

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
)

// kubeconfigBytes renders cfg as a kubeconfig with one context, "gitopsim",
// for user. Only certificate, token and impersonation credentials are
// carried over: those are what backends hand out.
func kubeconfigBytes(cfg *rest.Config, user string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["gitopsim"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
		CertificateAuthority:     cfg.CAFile,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.ServerName,
	}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		ClientCertificate:     cfg.CertFile,
		ClientKey:             cfg.KeyFile,
		Token:                 cfg.BearerToken,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateGroups:     cfg.Impersonate.Groups,
	}
	kc.Contexts["gitopsim"] = &clientcmdapi.Context{Cluster: "gitopsim", AuthInfo: user}
	kc.CurrentContext = "gitopsim"
	out, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig for %s: %w", user, err)
	}
	return out, nil
}

// writeKubeconfig writes cfg as a kubeconfig file readable only by its owner,
// since it holds credentials.
func writeKubeconfig(path string, cfg *rest.Config, user string) error {
	b, err := kubeconfigBytes(cfg, user)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600)
}
