"""Run ``deploy/nginx/smsadmin.conf`` in a throw-away nginx prefix, for the tests.

The site file is used as it is, except for what only a real server has: the listen ports,
the upstream address, the certificate and static paths (and, for plain HTTP, the
http→https server block and the ``ssl_*`` lines). Every location rule stays the real
file's. Each replacement must match, so a change to the file that the tests no longer
understand fails loudly instead of testing something else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
SITE_FILE = DEPLOY_DIR / "nginx" / "smsadmin.conf"
DOMAIN = "sms.example.org"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"{SITE_FILE.name} no longer contains {old!r}")
    return text.replace(old, new)


def render_site(
    *,
    upstream: str,
    static_root: Path,
    acme_root: Path,
    http_port: int,
    https_port: int | None = None,
    certificate_dir: Path | None = None,
) -> str:
    """The site file for this machine: TLS when ``https_port`` is given, else plain HTTP
    on ``http_port`` (the TLS server's rules, without TLS)."""
    text = SITE_FILE.read_text()
    text = _replace(text, "server 127.0.0.1:8000;", f"server {upstream};")
    text = _replace(text, "alias /opt/smsadmin/var/static/;", f"alias {static_root}/;")
    text = _replace(text, "root /var/www/letsencrypt;", f"root {acme_root};")
    lines = text.splitlines()
    # IPv6 may be missing in a container: loopback IPv4 only.
    lines = [line for line in lines if not line.strip().startswith("listen [::]:")]
    text = "\n".join(lines) + "\n"
    if https_port is not None:
        if certificate_dir is None:
            raise ValueError("TLS needs certificate_dir")
        text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
        text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        text = _replace(text, f"/etc/letsencrypt/live/{DOMAIN}/", f"{certificate_dir}/")
        return text
    start, end = text.index("# --- http"), text.index("# --- end http")
    text = text[:start] + text[end:]
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{http_port};")
    kept = [line for line in text.splitlines() if not line.strip().startswith("ssl_")]
    return "\n".join(kept) + "\n"


def write_prefix(prefix: Path, site: str) -> Path:
    """A minimal nginx.conf around the site, every path inside ``prefix``; its path."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    (prefix / "smsadmin.conf").write_text(site)
    # As root, nginx's workers would otherwise drop to nobody, who cannot enter pytest's
    # private temporary folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix}/tmp/{kind};"  # noqa: S108 (inside prefix)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
{temp_paths}
    include {prefix}/smsadmin.conf;
}}
"""
    )
    return conf


def nginx_test(prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    binary = nginx_binary()
    if not binary:
        raise RuntimeError("nginx is not installed (scripts/ensure-test-services.sh does it)")
    return subprocess.run(  # noqa: S603
        [binary, "-t", "-p", f"{prefix}/", "-c", str(conf), "-e", f"{prefix}/logs/error.log"],
        capture_output=True,
        text=True,
        check=False,
    )


def self_signed_certificate(directory: Path, host: str = DOMAIN) -> Path:
    """fullchain.pem, privkey.pem and chain.pem as certbot lays them out."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        [  # noqa: S607
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-keyout",
            str(directory / "privkey.pem"),
            "-out",
            str(directory / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(directory / "fullchain.pem", directory / "chain.pem")
    return directory
