// Package cluster gives gitopsim a real Kubernetes API to work against,
// behind one Backend interface:
//
//   - envtest (the default): kube-apiserver and etcd started by
//     controller-runtime's envtest, plus kube-controller-manager so that
//     namespaces finish deleting, owner references are garbage-collected and
//     CertificateSigningRequests are signed. No Docker needed; binaries come
//     from `make tools` (see FindAssets).
//   - kind: a kind cluster, where a Docker engine answers.
//   - kubeconfig: any existing cluster.
//
// Every backend answers Available before anything starts, cleans up what it
// started when Start fails half way, and hands out admin credentials and
// per-user credentials (NewUser) for RBAC tests.
//
// The API server runs on wall time; backends take no virtual clock.
package cluster
