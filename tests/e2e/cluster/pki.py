"""Certificates and kubeconfigs for the local control plane, made with the openssl CLI.

Role: used by `local_cluster.LocalCluster` at start (CA, serving cert, component client certs,
service-account signing key) and by `LocalCluster.serviceaccount_kubeconfig` (token kubeconfig).
Client identity comes from the certificate subject: CN is the user name and O the group, so the
admin cert carries O=system:masters and the scheduler and controller-manager certs carry the
user names the default RBAC bootstrap policy grants.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CERT_DAYS = 2  # throwaway certs for one test session
API_SERVER_SANS = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "IP:10.0.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
]
# kubeconfig user -> certificate subject: CN is the user name, O the group.
CLIENT_SUBJECTS = {
    "admin": "/O=system:masters/CN=inferno-e2e-admin",
    "kube-controller-manager": "/CN=system:kube-controller-manager",
    "kube-scheduler": "/CN=system:kube-scheduler",
    # KWOK writes node and pod status and node leases for every fake node: cluster-admin is simplest.
    "kwok": "/O=system:masters/CN=kwok-controller",
}


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


def _genkey(path: Path, cwd: Path) -> None:
    # ECDSA P-256: generated in milliseconds where RSA-2048 takes ~0.2 s each on a busy core,
    # and accepted everywhere here (TLS, client certs, ES256 service-account tokens).
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path), cwd=cwd)


class Pki:
    """A throwaway CA in `directory`, able to issue the certs the control plane needs."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.sa_key = self.dir / "sa.key"
        self.sa_pub = self.dir / "sa.pub"

    def create_ca(self) -> None:
        _genkey(self.ca_key, self.dir)
        _openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            str(self.ca_key),
            "-subj",
            "/CN=inferno-e2e-ca",
            "-days",
            str(CERT_DAYS),
            "-out",
            str(self.ca_cert),
            cwd=self.dir,
        )
        # Service-account tokens are signed with this key pair (not a certificate).
        _genkey(self.sa_key, self.dir)
        _openssl("pkey", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub), cwd=self.dir)

    def issue(self, name: str, subject: str, *, server_sans: list[str] | None = None) -> ClientCert:
        """Issue a cert signed by the CA; with server_sans it is a serving cert, else a client cert."""
        key, csr, cert, ext = (self.dir / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
        _genkey(key, self.dir)
        _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr), cwd=self.dir)
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
        if server_sans:
            lines += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(server_sans)]
        else:
            lines.append("extendedKeyUsage=clientAuth")
        ext.write_text("\n".join(lines) + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.ca_cert),
            "-CAkey",
            str(self.ca_key),
            "-CAcreateserial",
            "-days",
            str(CERT_DAYS),
            "-extfile",
            str(ext),
            "-out",
            str(cert),
            cwd=self.dir,
        )
        return ClientCert(cert=cert, key=key)


def _kubeconfig(server: str, ca_cert: Path, user_name: str, user_lines: list[str]) -> str:
    # Hand-written YAML: no PyYAML dependency, and every value here is a path, URL or token.
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: inferno-e2e",
            "  cluster:",
            f"    server: {server}",
            f"    certificate-authority: {ca_cert}",
            "contexts:",
            f"- name: {user_name}@inferno-e2e",
            "  context:",
            "    cluster: inferno-e2e",
            f"    user: {user_name}",
            f"current-context: {user_name}@inferno-e2e",
            "users:",
            f"- name: {user_name}",
            "  user:",
            *(f"    {line}" for line in user_lines),
            "",
        ]
    )


def write_cert_kubeconfig(path: Path, server: str, ca_cert: Path, user: str, cert: ClientCert) -> Path:
    lines = [f"client-certificate: {cert.cert}", f"client-key: {cert.key}"]
    path.write_text(_kubeconfig(server, ca_cert, user, lines))
    return path


def write_token_kubeconfig(path: Path, server: str, ca_cert: Path, user: str, token: str) -> Path:
    path.write_text(_kubeconfig(server, ca_cert, user, [f"token: {token}"]))
    path.chmod(0o600)
    return path


def make_cluster_pki(directory: Path, server: str, kubeconfig_path: Callable[[str], Path]) -> Pki:
    """CA, SA key, API server serving cert, front-proxy cert and one kubeconfig per client user."""
    pki = Pki(directory)
    pki.create_ca()
    pki.issue("apiserver", "/CN=kube-apiserver", server_sans=API_SERVER_SANS)
    pki.issue("front-proxy-client", "/CN=front-proxy-client")
    for user, subject in CLIENT_SUBJECTS.items():
        write_cert_kubeconfig(kubeconfig_path(user), server, pki.ca_cert, user, pki.issue(user, subject))
    return pki
