"""Docker image references: validation with Styx's reason strings, parsing, and the default tag.

Styx's image check (docs/semantics.md#workflow-validation). A reference is `[host[:port]/]path[:tag][@digest]`:
- The digest follows the last `@`; the tag follows the last `:` before it unless that text contains a `/`
  (then the colon belongs to a registry port).
- The first path segment is a registry host only if it contains `.` or `:` or is `localhost`. As in Styx, a
  lone segment that looks like a host (`foo.bar`, `localhost`) is a registry without a repository and is
  refused.
- Hosts are DNS names (labels of letters, digits and inner dashes, an optional trailing dot) or dotted
  IPv4 quads; ports are 0-65535. Bracketed IPv6 hosts are not accepted (nor were they by Styx).
- Each path component must use `[a-z0-9._-]` (Styx's check and message) and, as Docker's grammar demands,
  start and end with `[a-z0-9]` with only `.`, `_`, `__` or dashes between (stricter than Styx, which took
  `-foo`; such components get their own message). The path (without host) is at most 255 characters.
- Tags match `[\\w][\\w.-]{0,127}`; digests `algorithm:hex{32,}`, where sha256 needs 64 lower-case hex.
- The registry an image comes from (`registry_name`, what STYX_ALLOWED_REGISTRIES lists) is its host[:port]
  normalized by `normalize_registry`, and `docker.io` for references without a host (Docker Hub).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from styx_actors.errors import PicklableError

REPOSITORY_MAX_LENGTH = 255
DEFAULT_TAG = "latest"
# The registry of references without a host, under the name Docker gives it; the other names are aliases.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io"})

# Patterns as Styx prints them in its messages; the compiled forms spell \w as ASCII, as Java does.
TAG_PATTERN = r"[\w][\w.-]{0,127}"
NAME_COMPONENT_PATTERN = r"^([a-z0-9._-]+)$"

_TAG = re.compile(TAG_PATTERN, re.ASCII)
_DIGEST = re.compile(r"(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9A-Fa-f]{32,})")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
_NAME_COMPONENT_CHARS = re.compile(r"[a-z0-9._-]+")
_NAME_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_DIGITS_AND_PERIODS = re.compile(r"[0-9.]+")
_PORT = re.compile(r"[0-9]+")

INVALID_REPOSITORY_NAME = 'Invalid repository name (ex: "registry.domain.tld/myrepos")'


@dataclass(frozen=True)
class ImageReference:
    registry: str | None  # host[:port], None for Docker Hub
    path: str  # slash-separated name components, e.g. `library/busybox`
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """The repository as written, with its registry: `localhost:5000/foo/bar`."""
        return self.path if self.registry is None else f"{self.registry}/{self.path}"

    @property
    def registry_name(self) -> str:
        """The registry the engine pulls from, normalized (`docker.io` for Docker Hub): see normalize_registry."""
        return DOCKER_HUB if self.registry is None else normalize_registry(self.registry)


class InvalidImageReference(PicklableError, ValueError):
    def __init__(self, image: str, reasons: list[str]) -> None:
        super().__init__(f"invalid image {image!r}: {', '.join(reasons)}")
        self.reasons = reasons


@dataclass(frozen=True)
class _Split:
    repository: str
    tag: str | None
    digest: str | None


def _split(image: str) -> _Split:
    at = image.rfind("@")
    digest = image[at + 1 :] if at >= 0 else None
    tag_end = at if at >= 0 else len(image)
    colon = image.rfind(":", 0, tag_end)
    if colon >= 0 and "/" not in image[colon + 1 : tag_end]:
        return _Split(image[:colon], image[colon + 1 : tag_end], digest)
    return _Split(image[:tag_end], None, digest)


def _registry_and_path(repository: str) -> tuple[str | None, str]:
    first, slash, rest = repository.partition("/")
    if "." in first or ":" in first or first == "localhost":
        return first, rest if slash else ""
    return None, repository


def image_errors(image: str) -> list[str]:
    """Why `image` is not a valid reference (Styx's reason strings, in a stable order); empty when valid."""
    split = _split(image)
    errors: list[str] = []
    if split.digest is not None:
        errors += _digest_errors(split.digest)
    if split.tag is not None:
        errors += _tag_errors(split.tag)
    if "://" in split.repository:
        return errors + [INVALID_REPOSITORY_NAME]
    registry, path = _registry_and_path(split.repository)
    if registry is not None:
        if "/" not in split.repository:
            return errors + [INVALID_REPOSITORY_NAME]
        errors += _endpoint_errors(registry)
    errors += _path_errors(image, path)
    return list(dict.fromkeys(errors))


def parse_image(image: str) -> ImageReference:
    """The parts of a valid reference; raises InvalidImageReference with the reasons otherwise."""
    errors = image_errors(image)
    if errors:
        raise InvalidImageReference(image, errors)
    split = _split(image)
    registry, path = _registry_and_path(split.repository)
    return ImageReference(registry=registry, path=path, tag=split.tag, digest=split.digest)


def with_default_tag(image: str) -> str:
    """`image` with `:latest` appended when it names neither a tag nor a digest (a registry port is no tag)."""
    reference = parse_image(image)
    if reference.tag is None and reference.digest is None:
        return f"{image}:{DEFAULT_TAG}"
    return image


def normalize_registry(registry: str) -> str:
    """`host[:port]` as one name per registry: lower case, without a fully qualified host's trailing dot,
    Docker Hub's aliases as `docker.io`. Raises ValueError when `registry` is not a valid `host[:port]`."""
    lowered = registry.strip().lower()
    errors = _endpoint_errors(lowered)
    if errors:
        raise ValueError(f"invalid registry {registry!r}: {errors[0]}")
    host, colon, port = lowered.partition(":")
    normalized = f"{host.removesuffix('.')}{colon}{port}"
    return DOCKER_HUB if normalized in _DOCKER_HUB_ALIASES else normalized


def disallowed_registry(image: str, allowed_registries: Collection[str]) -> str | None:
    """The registry of `image` when `allowed_registries` (normalized; empty = any) does not name it, else None.

    An invalid reference names no registry (None): its own errors refuse it.
    """
    if not allowed_registries or image_errors(image):
        return None
    registry = parse_image(image).registry_name
    return None if registry in allowed_registries else registry


def _tag_errors(tag: str) -> list[str]:
    if not tag:
        return ["Tag cannot be empty"]
    if not _TAG.fullmatch(tag):
        return [f'Illegal tag: "{tag}", must match {TAG_PATTERN}']
    return []


def _digest_errors(digest: str) -> list[str]:
    if not digest:
        return ["Digest cannot be empty"]
    match = _DIGEST.fullmatch(digest)
    if match is None or (match.group("algorithm") == "sha256" and not _SHA256_HEX.fullmatch(match.group("hex"))):
        return [f'Illegal digest: "{digest}"']
    return []


def _endpoint_errors(endpoint: str) -> list[str]:
    host, colon, port = endpoint.partition(":")
    if not _valid_host(host):
        return [f'Invalid domain name: "{host}"']
    if colon and not (_PORT.fullmatch(port) and int(port) <= 65535):
        return [f'Invalid port in endpoint: "{endpoint}"']
    return []


def _valid_host(host: str) -> bool:
    if _IPV4.fullmatch(host):
        return True
    if _DIGITS_AND_PERIODS.fullmatch(host):  # `1.2.3.4.` or `123` look numeric but are not addresses
        return False
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return all(_DNS_LABEL.fullmatch(label) for label in labels)


def _path_errors(image: str, path: str) -> list[str]:
    for component in path.split("/"):
        if not _NAME_COMPONENT_CHARS.fullmatch(component):
            return [
                f"Invalid image name ({image}), only {NAME_COMPONENT_PATTERN} is allowed for each "
                f'slash-separated name component (failed on "{component}")'
            ]
        if not _NAME_COMPONENT.fullmatch(component):
            return [
                f"Invalid image name ({image}), each slash-separated name component must start and end with "
                f'[a-z0-9] and separate them only with ".", "_", "__" or dashes (failed on "{component}")'
            ]
    if len(path) > REPOSITORY_MAX_LENGTH:
        return [
            f"Invalid image name ({image}), repository name cannot be larger than {REPOSITORY_MAX_LENGTH} characters"
        ]
    return []
