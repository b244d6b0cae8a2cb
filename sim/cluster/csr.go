package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// csrSignTimeout bounds the wait for the cluster's signer.
const csrSignTimeout = 30 * time.Second

// csrUser makes client-certificate credentials for name in groups through
// the cluster's own CertificateSigningRequest API (signer
// kubernetes.io/kube-apiserver-client), approved by admin. It works on any
// cluster whose controller-manager signs client certificates, which kind's
// and gitopsim's envtest's do.
func csrUser(ctx context.Context, admin *rest.Config, name string, groups []string) (*User, error) {
	if name == "" {
		return nil, errors.New("NewUser: empty user name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new user %s: %w", name, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name, Organization: groups},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("new user %s: certificate request: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("new user %s: %w", name, err)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "gitopsim-user-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("new user %s: create CertificateSigningRequest: %w", name, err)
	}
	// The CSR is only a vehicle; the certificate outlives it.
	defer func() { _ = csrs.Delete(context.WithoutCancel(ctx), csr.Name, metav1.DeleteOptions{}) }()

	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:    certificatesv1.CertificateApproved,
		Status:  corev1.ConditionTrue,
		Reason:  "GitopsimNewUser",
		Message: "approved by gitopsim for a test identity",
	})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("new user %s: approve CertificateSigningRequest %s: %w", name, csr.Name, err)
	}
	var certPEM []byte
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, csrSignTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == certificatesv1.CertificateFailed || c.Type == certificatesv1.CertificateDenied {
				return false, fmt.Errorf("signer refused: %s: %s", c.Reason, c.Message)
			}
		}
		certPEM = got.Status.Certificate
		return len(certPEM) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("new user %s: CertificateSigningRequest %s not signed within %v (does the cluster's controller-manager sign %s?): %w",
			name, csr.Name, csrSignTimeout, certificatesv1.KubeAPIServerClientSignerName, err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.QPS, cfg.Burst = admin.QPS, admin.Burst
	cfg.CertData = certPEM
	cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	kc, err := kubeconfigBytes(cfg, name)
	if err != nil {
		return nil, err
	}
	return &User{Name: name, Groups: groups, Config: cfg, Kubeconfig: kc}, nil
}
