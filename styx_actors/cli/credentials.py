"""Google ID tokens for the `Authorization: Bearer` header (docs/cli.md#authentication, docs/auth.md#google-id-tokens).

Application-default credentials are looked up without touching the network unless this machine has some:
a key file named by GOOGLE_APPLICATION_CREDENTIALS, gcloud's file from `gcloud auth application-default
login`, or a Google Cloud machine (its metadata server). On a laptop without any of them no request
leaves the machine and no header is sent; google-auth's own lookup would first probe the metadata server
for seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from styx_actors.cli.errors import ClientError

# Key files from which google-auth mints ID tokens for any audience itself.
TOKEN_MINTING_TYPES = frozenset({"service_account", "impersonated_service_account"})
DMI_PRODUCT_NAME = Path("/sys/class/dmi/id/product_name")


def id_token(audience: str) -> str | None:
    """A Google ID token for `audience` (the API host), or None when this machine has no credentials.

    Raises ClientError when credentials exist but no token can be had from them.
    """
    import google.auth.exceptions

    try:
        key_file = _credentials_file()
        if key_file is not None:
            if _key_type(key_file) in TOKEN_MINTING_TYPES:
                return _minted_token(audience)
            return _user_token()
        if _on_google_cloud():
            return _minted_token(audience)  # from the metadata server
        return None
    except google.auth.exceptions.DefaultCredentialsError:
        return None  # nothing usable found: proceed without a header, as Styx's client does
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        raise ClientError(f"could not get a Google ID token: {exc}") from exc


def credentials_available() -> bool:
    """Would `id_token` find credentials? Asked without any request, for a host the token may not go to."""
    key_file = _credentials_file()
    return (key_file is not None and key_file.is_file()) or _on_google_cloud()


def _credentials_file() -> Path | None:
    from google.auth import _cloud_sdk  # gcloud's well-known path, which differs per OS

    named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        return Path(named)
    gcloud_file = Path(_cloud_sdk.get_application_default_credentials_path())
    return gcloud_file if gcloud_file.is_file() else None


def _key_type(path: Path) -> str | None:
    import google.auth.exceptions

    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise google.auth.exceptions.DefaultCredentialsError(f"cannot read {path}: {exc}") from exc
    return info.get("type") if isinstance(info, dict) else None


def _minted_token(audience: str) -> str:
    import google.auth.transport.requests
    import google.oauth2.id_token

    token: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    return token


def _user_token() -> str | None:
    """gcloud user credentials cannot mint a token for an audience; their refresh returns an ID token
    issued to gcloud's client, which the API accepts for whitelisted domains (Styx does the same)."""
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default()
    credentials.refresh(google.auth.transport.requests.Request())
    token: str | None = getattr(credentials, "id_token", None)
    return token


def _on_google_cloud() -> bool:
    if os.environ.get("GCE_METADATA_HOST") or os.environ.get("K_SERVICE"):
        return True
    try:
        return DMI_PRODUCT_NAME.read_text().startswith("Google")
    except OSError:
        return False
