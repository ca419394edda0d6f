"""manage.py run_access --node-id N [--host H] [--port P] [--cert C --key K] [--nats-url U]

An access node: WebTransport (HTTP/3 over UDP) on https://host:port/wt, NATS on the other side.
Without --cert/--key it serves the development certificate in VAR_DIR/certs (made when missing).
SIGTERM or SIGINT closes every session with UNAVAILABLE (clients reconnect elsewhere) and exits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from imsite.gc_policy import collect_periodically, tune_gc
from realtime.certificates import CertificateError, CertificateInfo, ensure_dev_certificate, load_certificate
from realtime.node import AccessNode, session_config
from realtime.webtransport import CLOSE_GRACE_SECONDS, WebTransportServer, serve_webtransport

logger = logging.getLogger(__name__)

_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise CommandError(f"--port must be an integer between 0 and 65535, got {raw!r}") from exc
    if not 0 <= value <= 65535:
        raise CommandError(f"--port must be an integer between 0 and 65535, got {value}")
    return value


class Command(BaseCommand):
    help = "Run an access node: WebTransport sessions of clients, bridged to the logic workers over NATS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node-id", required=True, help="this node's id: letters, digits, '-' and '_'")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", default="4433", help="UDP port (default 4433; 0 picks a free one)")
        parser.add_argument("--cert", default="", help="PEM certificate (chain); with --key")
        parser.add_argument("--key", default="", help="PEM private key of --cert")
        parser.add_argument("--nats-url", default="", help="NATS server (default: settings.NATS_URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        node_id: str = options["node_id"]
        if not _NODE_ID.match(node_id):
            raise CommandError(f"--node-id must be 1-64 letters, digits, '-' or '_', got {node_id!r}")
        host: str = options["host"]
        if not host:
            raise CommandError("--host must not be empty")
        port = _port(options["port"])
        certificate = self._certificate(options["cert"], options["key"])
        nats_url = options["nats_url"] or settings.NATS_URL
        renew_in = None if options["cert"] else Path(settings.VAR_DIR) / "certs"
        asyncio.run(self._run(node_id, host, port, certificate, nats_url, renew_in))

    @staticmethod
    def _certificate(cert: str, key: str) -> CertificateInfo:
        if bool(cert) != bool(key):
            raise CommandError("--cert and --key go together: give both, or neither for the dev certificate")
        try:
            if cert:
                return load_certificate(Path(cert), Path(key))
            return ensure_dev_certificate(Path(settings.VAR_DIR) / "certs")
        except (CertificateError, OSError) as exc:
            raise CommandError(f"cannot use the certificate: {exc}") from exc

    async def _run(
        self,
        node_id: str,
        host: str,
        port: int,
        certificate: CertificateInfo,
        nats_url: str,
        renew_in: Path | None,
    ) -> None:

        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        node = AccessNode(node_id, nats_url, config=session_config())
        await node.start()
        try:
            server = await serve_webtransport(host, port, certificate, node.attach, path="/wt")
        except OSError as exc:
            await node.stop()
            raise CommandError(f"cannot listen on UDP {host}:{port}: {exc}") from exc
        tune_gc()
        collector = loop.create_task(collect_periodically())
        bound_port = server.address[1]
        logger.info(
            "access node ready: node %s on udp port %d, certificate sha-256 %s",
            node_id,
            bound_port,
            certificate.sha256_hex,
            extra={"nodeId": node_id, "host": host, "port": bound_port, "certificateSha256": certificate.sha256_hex},
        )
        renewing = asyncio.create_task(_keep_renewed(server, certificate, renew_in)) if renew_in else None
        await stopping.wait()
        collector.cancel()
        if renewing is not None:
            renewing.cancel()
        logger.info("access node stopping", extra={"nodeId": node_id, "sessions": len(node.connections)})
        await node.stop()  # sessions closed with UNAVAILABLE; their close capsules are on their way
        # the close capsules leave CLOSE_GRACE_SECONDS after the farewell frames; then one more round of sends
        await asyncio.sleep(CLOSE_GRACE_SECONDS + 0.1)
        server.close()


RENEW_CHECK_SECONDS = 3600.0


async def _keep_renewed(server: WebTransportServer, certificate: CertificateInfo, directory: Path) -> None:
    """The development certificate lives 13 days: a node running longer serves the renewed one (which
    GET /realtime/endpoints hands out) to new connections, checking hourly."""
    current = certificate.sha256
    while True:
        await asyncio.sleep(RENEW_CHECK_SECONDS)
        try:
            renewed = await asyncio.to_thread(ensure_dev_certificate, directory)
        except (CertificateError, OSError):
            logger.exception("the development certificate could not be renewed")
            continue
        if renewed.sha256 != current:
            server.use_certificate(renewed)
            current = renewed.sha256
            logger.info("serving the renewed development certificate %s", renewed.sha256_hex)
