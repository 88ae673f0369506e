"""The cluster DNS of the test node: Service names to their ClusterIPs, as CoreDNS answers.

The operator's in-cluster login (kopf's) connects to https://kubernetes.default.svc, a
name only the cluster DNS knows; no CoreDNS image can be had here (no registry). So this
answers A queries for <service>.<namespace>.svc.<DOMAIN> from the Service objects in the
API, on NODE_IP:53 (the kubelet's clusterDNS), and NXDOMAIN for every other name: the
pods resolve nothing outside the cluster.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.kube.controlplane import ControlPlane

DOMAIN = "cluster.local"
TTL = 5


class ClusterDNS:
    def __init__(self, plane: ControlPlane, address: str) -> None:
        self.plane = plane
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((address, 53))
        self._socket.settimeout(0.5)
        self._stop = threading.Event()

    def start(self) -> ClusterDNS:
        threading.Thread(target=self._serve, name="cluster-dns", daemon=True).start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            with contextlib.suppress(dns.exception.DNSException, OSError):
                self._socket.sendto(self.answer(query), client)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        address = self.cluster_ip(question.name.to_text(omit_final_dot=True).lower())
        if address is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "A", address))
        # Any other type of a known name: no data (NOERROR, no answer), as CoreDNS says.
        return response.to_wire()

    def cluster_ip(self, name: str) -> str | None:
        service, _, rest = name.partition(".")
        namespace, _, zone = rest.partition(".")
        if zone != f"svc.{DOMAIN}" or not service or not namespace:
            return None
        found = self.plane.api("GET", f"/api/v1/namespaces/{namespace}/services/{service}")
        if not found.is_success:
            return None
        address = found.json()["spec"].get("clusterIP")
        return address if address and address != "None" else None

    def stop(self) -> None:
        self._stop.set()
        self._socket.close()
