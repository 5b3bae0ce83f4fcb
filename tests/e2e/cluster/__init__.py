"""Local real control plane (etcd, kube-apiserver, controller-manager, scheduler, KWOK) and Prometheus."""
