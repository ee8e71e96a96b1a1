"""Container images for the registry tests: OCI layouts built here (random layers, one
image per platform under an index), pushed into a real registry by skopeo; a token
service for distribution's token flow."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _stream_blob(layout: Path, size: int) -> tuple[str, int]:
    """A layer of ``size`` random bytes (stored as is: gzip would not shrink them)."""
    h = hashlib.sha256()
    tmp = layout / "blobs" / "sha256" / "incoming"
    with open(tmp, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            out.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    digest = h.hexdigest()
    tmp.rename(layout / "blobs" / "sha256" / digest)
    return f"sha256:{digest}", size


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass
class Image:
    layout: Path
    tag: str
    index_digest: str
    platforms: dict[str, str] = field(default_factory=dict)  # platform → manifest digest
    layers: list[str] = field(default_factory=list)


def build(
    layout: Path,
    tag: str = "1.0",
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    big_layer: int = 0,
    big_layers: int = 1,
) -> Image:
    """An OCI layout holding one index over an image per platform; each image has a
    layer of its own and one shared; ``big_layers`` layers of ``big_layer`` incompressible
    bytes more in the first image."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    shared = _blob(layout, _layer({"etc/shared.txt": os.urandom(2048)}))
    manifests = []
    image = Image(layout, tag, "")
    for n, platform in enumerate(platforms):
        os_name, arch = platform.split("/")[:2]
        own = _blob(layout, _layer({f"app/{arch}.bin": os.urandom(4096 + n)}))
        layers = [shared, own]
        if big_layer and n == 0:
            layers += [_stream_blob(layout, big_layer) for _ in range(big_layers)]
        config = {
            "architecture": arch, "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
            "config": {"Cmd": ["/app"]},
        }  # fmt: skip
        cdigest, csize = _blob(layout, json.dumps(config).encode())
        media = [
            "application/vnd.oci.image.layer.v1.tar" if big_layer and i >= 2
            else "application/vnd.oci.image.layer.v1.tar+gzip"
            for i in range(len(layers))
        ]  # fmt: skip
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cdigest, "size": csize},
            "layers": [{"mediaType": m, "digest": d, "size": s}
                       for m, (d, s) in zip(media, layers)],
        }  # fmt: skip
        mdigest, msize = _blob(layout, json.dumps(manifest).encode())
        image.platforms[platform] = mdigest
        image.layers += [d for d, _ in layers if d not in image.layers]
        manifests.append({
            "mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
            "platform": {"architecture": arch, "os": os_name},
        })  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    idigest, isize = _blob(layout, json.dumps(index).encode())
    image.index_digest = idigest
    top = {"mediaType": OCI_INDEX, "digest": idigest, "size": isize,
           "annotations": {"org.opencontainers.image.ref.name": tag}}  # fmt: skip
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return image


def extend(image: Image, layout: Path, platform: str = "linux/riscv64") -> Image:
    """``image`` with one platform more (a layer of its own beside the shared one), every
    other blob the same: what a diff of it against ``image`` holds is that platform's."""
    shutil.copytree(image.layout, layout)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    index = json.loads((layout / "blobs" / "sha256" / top["digest"][7:]).read_bytes())
    os_name, arch = platform.split("/")
    shared = (image.layers[0], (layout / "blobs" / "sha256" / image.layers[0][7:]).stat().st_size)
    own = _blob(layout, _layer({f"app/{arch}.bin": os.urandom(4096)}))
    config = {"architecture": arch, "os": os_name, "config": {"Cmd": ["/app"]},
              "rootfs": {"type": "layers", "diff_ids": [shared[0], own[0]]}}  # fmt: skip
    cdigest, csize = _blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": csize},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": d, "size": n} for d, n in (shared, own)],
    }  # fmt: skip
    mdigest, msize = _blob(layout, json.dumps(manifest).encode())
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
                               "platform": {"architecture": arch, "os": os_name}})  # fmt: skip
    idigest, isize = _blob(layout, json.dumps(index).encode())
    top.update(digest=idigest, size=isize)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return Image(layout, image.tag, idigest, {**image.platforms, platform: mdigest},
                 [*image.layers, own[0]])  # fmt: skip


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, check=True
    )


def push(image: Image, registry: Any, repository: str, creds: str | None = None) -> None:
    """``skopeo copy --all`` from the layout into the registry, digests kept."""
    auth = ["--dest-creds", creds] if creds else []
    skopeo(
        "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", *auth,
        f"oci:{image.layout}:{image.tag}", f"docker://{registry.host}/{repository}:{image.tag}",
    )  # fmt: skip


def remote_digest(registry: Any, reference: str, creds: str | None = None) -> str:
    """The digest of what ``reference`` names in the registry, as skopeo sees it."""
    auth = ["--creds", creds] if creds else []
    out = skopeo(
        "inspect", "--raw", "--tls-verify=false", *auth, f"docker://{registry.host}/{reference}"
    )
    return "sha256:" + hashlib.sha256(out.stdout.encode()).hexdigest()


class TokenService:
    """Distribution's token flow: basic credentials in, a JWT out (RS256, the certificate
    in ``x5c``, which the registry checks against its root bundle)."""

    service = "offsite-test-registry"
    issuer = "offsite-test-issuer"

    def __init__(self, user: str, password: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.user, self.password = user, password
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offsite token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.asked: list[dict[str, Any]] = []  # each request: scope, user, or None
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, word = base64.b64decode(header[6:]).decode().partition(":")
                    if (user, word) != (service.user, service.password):
                        self.send_response(401)
                        self.end_headers()
                        return
                service.asked.append({"scope": query.get("scope", [""])[0], "user": user})
                body = json.dumps({"token": service.token(query.get("scope", [""])[0], user)})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scope: str, user: str | None) -> str:
        import time

        import jwt

        access = []
        if scope.startswith("repository:") and user is not None:  # anonymous: no access
            _, name, actions = scope.split(":", 2)
            access.append({"type": "repository", "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": base64.b64encode(os.urandom(12)).decode(),
            "access": access,
        }  # fmt: skip
        headers = {"x5c": [base64.b64encode(self.cert_der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
