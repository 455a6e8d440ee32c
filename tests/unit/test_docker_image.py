"""Docker image references: Styx's reason strings, Docker's grammar, parsing and the default tag."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx_actors.docker_image import (
    ImageReference,
    InvalidImageReference,
    disallowed_registry,
    image_errors,
    normalize_registry,
    parse_image,
    with_default_tag,
)

SHA = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
NAME_RULE = "only ^([a-z0-9._-]+)$ is allowed for each slash-separated name component"
SEPARATOR_RULE = (
    'each slash-separated name component must start and end with [a-z0-9] and separate them only with ".", "_", '
    '"__" or dashes'
)
REPOSITORY_NAME = 'Invalid repository name (ex: "registry.domain.tld/myrepos")'


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "localhost:5000/foo/bar:tag",
        f"gcr.io/p/img@sha256:{SHA}",
        "styx-canary-dummy:dummy",
        "styx-test/busybox:latest",
        "repo",
        "namespace/repo:1.2",
        "reg.istry:4711/repo",
        "reg.istry.:4711/namespace/repo",  # a fully qualified host ends with a dot
        "1.2.3.4:4711/namespace/repo",
        "registry.test.net:80/fooo/bar",
        "REG.ISTRY/repo",  # host names are case-insensitive
        "localhost/repo",
        f"foo.net/bar@sha256:{SHA}",
        "foo@tarsum.v1+sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        f"baz.io:4711/foo/foo-bar:1.2.3-SNAPSHOT-20170830T143321-decafbad@sha256:{SHA}",
        "a__b/c.d/e---f/g_h",
        "tag:_underscore-first",
        "x:" + "t" * 128,
        "r" * 255,
        "reg.istry:65535/repo",
    ],
)
def test_valid_images(image: str) -> None:
    assert image_errors(image) == []


@pytest.mark.parametrize(
    ("image", "reasons"),
    [
        ("UPPER", [f'Invalid image name (UPPER), {NAME_RULE} (failed on "UPPER")']),
        ("foo:", ["Tag cannot be empty"]),
        (f"repo:@sha256:{SHA}", ["Tag cannot be empty"]),
        ("foo::bar", [REPOSITORY_NAME]),
        ("http://x/y", [REPOSITORY_NAME]),
        ("foo@sha256:abc", ['Illegal digest: "sha256:abc"']),
        ("-foo", [f'Invalid image name (-foo), {SEPARATOR_RULE} (failed on "-foo")']),
        ("foo-", [f'Invalid image name (foo-), {SEPARATOR_RULE} (failed on "foo-")']),
        ("a/b//c", [f'Invalid image name (a/b//c), {NAME_RULE} (failed on "")']),
        ("x/a..b", [f'Invalid image name (x/a..b), {SEPARATOR_RULE} (failed on "a..b")']),
        ("x/a___b", [f'Invalid image name (x/a___b), {SEPARATOR_RULE} (failed on "a___b")']),
        ("foo.bar", [REPOSITORY_NAME]),  # a lone host-like segment is a registry without a repository (Styx)
        ("foo@", ["Digest cannot be empty"]),
        ("foo@:123", ['Illegal digest: ":123"']),
        ("foo:bar@:123", ['Illegal digest: ":123"']),
        ("foo:4711/baz:bar@sha256:", ['Illegal digest: "sha256:"']),
        (f"foo@sha256:{SHA.upper()}", [f'Illegal digest: "sha256:{SHA.upper()}"']),
        (
            "gcr.io/foo-bar/baz-quux@sha256:de253bbb8bb165d7f69ad2204e9d362c8005ce15",
            ['Illegal digest: "sha256:de253bbb8bb165d7f69ad2204e9d362c8005ce15"'],
        ),
        ("1.2.3.4.:4711/namespace/repo", ['Invalid domain name: "1.2.3.4."']),
        (" reg.istry:4711/repo", ['Invalid domain name: " reg.istry"']),
        ("reg..istry/namespace/baz:foo", ['Invalid domain name: "reg..istry"']),
        ("foo-.ba|z/namespace/baz", ['Invalid domain name: "foo-.ba|z"']),
        ("reg.istry: 4711/repo", ['Invalid port in endpoint: "reg.istry: 4711"']),
        ("foo:345345345/namespace/baz:bar", ['Invalid port in endpoint: "foo:345345345"']),
        ("foo:-17/namespace/baz", ['Invalid port in endpoint: "foo:-17"']),
        ("reg.istry:65536/repo", ['Invalid port in endpoint: "reg.istry:65536"']),
        (
            "reg.istry:4711/namespace /repo",
            [f'Invalid image name (reg.istry:4711/namespace /repo), {NAME_RULE} (failed on "namespace ")'],
        ),
        ("x:" + "t" * 129, [f'Illegal tag: "{"t" * 129}", must match [\\w][\\w.-]{{0,127}}']),
        ("x:.tag", ['Illegal tag: ".tag", must match [\\w][\\w.-]{0,127}']),
        ("x:tág", ['Illegal tag: "tág", must match [\\w][\\w.-]{0,127}']),  # \w is ASCII, as in Java
        ("r" * 256, [f"Invalid image name ({'r' * 256}), repository name cannot be larger than 255 characters"]),
        ("localhost", [REPOSITORY_NAME]),  # a registry without a repository, as Styx reads it
        ("localhost:5000/", [f'Invalid image name (localhost:5000/), {NAME_RULE} (failed on "")']),
        ("", [f'Invalid image name (), {NAME_RULE} (failed on "")']),
    ],
)
def test_invalid_images(image: str, reasons: list[str]) -> None:
    assert image_errors(image) == reasons


def test_every_reason_is_reported_in_a_stable_order() -> None:
    assert image_errors("UP:.bad@sha256:abc") == [
        'Illegal digest: "sha256:abc"',
        'Illegal tag: ".bad", must match [\\w][\\w.-]{0,127}',
        f'Invalid image name (UP:.bad@sha256:abc), {NAME_RULE} (failed on "UP")',
    ]
    assert image_errors("ho st:x/Repo") == [
        'Invalid domain name: "ho st"',
        f'Invalid image name (ho st:x/Repo), {NAME_RULE} (failed on "Repo")',
    ]


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("busybox", ImageReference(None, "busybox", None, None)),
        ("busybox:1.36", ImageReference(None, "busybox", "1.36", None)),
        ("localhost:5000/foo/bar", ImageReference("localhost:5000", "foo/bar", None, None)),
        ("localhost:5000/foo/bar:tag", ImageReference("localhost:5000", "foo/bar", "tag", None)),
        (f"gcr.io/p/img@sha256:{SHA}", ImageReference("gcr.io", "p/img", None, f"sha256:{SHA}")),
        (f"gcr.io/p/img:v1@sha256:{SHA}", ImageReference("gcr.io", "p/img", "v1", f"sha256:{SHA}")),
        ("styx-test/busybox:latest", ImageReference(None, "styx-test/busybox", "latest", None)),
    ],
)
def test_parse_image(image: str, reference: ImageReference) -> None:
    assert parse_image(image) == reference


def test_repository_includes_the_registry() -> None:
    assert parse_image("localhost:5000/foo/bar:tag").repository == "localhost:5000/foo/bar"
    assert parse_image("busybox:1").repository == "busybox"


def test_parse_image_refuses_an_invalid_reference_with_its_reasons() -> None:
    with pytest.raises(InvalidImageReference) as raised:
        parse_image("foo:")
    assert raised.value.reasons == ["Tag cannot be empty"]
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("image", "runnable"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("localhost:5000/foo", "localhost:5000/foo:latest"),  # the port is not a tag
        ("localhost:5000/foo:v2", "localhost:5000/foo:v2"),
        (f"gcr.io/p/img@sha256:{SHA}", f"gcr.io/p/img@sha256:{SHA}"),
        ("styx-test/busybox", "styx-test/busybox:latest"),
    ],
)
def test_with_default_tag(image: str, runnable: str) -> None:
    assert with_default_tag(image) == runnable


def test_with_default_tag_refuses_an_invalid_reference() -> None:
    with pytest.raises(InvalidImageReference):
        with_default_tag("UPPER")


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),  # no host: Docker Hub
        ("library/busybox:1.36", "docker.io"),
        ("index.docker.io/library/busybox", "docker.io"),  # Hub's aliases are Hub
        ("registry-1.docker.io/library/busybox", "docker.io"),
        ("GCR.io/p/img", "gcr.io"),  # host names are case-insensitive
        ("reg.istry.:4711/ns/repo", "reg.istry:4711"),  # a fully qualified host is the same host
        ("localhost:5000/foo", "localhost:5000"),  # the port is part of the registry
        ("localhost/foo", "localhost"),
        ("10.0.0.1:80/internal/probe", "10.0.0.1:80"),
    ],
)
def test_registry_name(image: str, registry: str) -> None:
    assert parse_image(image).registry_name == registry


@pytest.mark.parametrize("registry", ["http://gcr.io", "gcr.io/p", "reg istry", "host:99999", "host:", ""])
def test_normalize_registry_refuses_what_is_not_host_and_port(registry: str) -> None:
    with pytest.raises(ValueError, match="invalid registry"):
        normalize_registry(registry)


def test_disallowed_registry() -> None:
    allowed = ["gcr.io", "localhost:5000"]
    assert disallowed_registry("gcr.io/p/img:1", allowed) is None
    assert disallowed_registry("localhost:5000/img", allowed) is None
    assert disallowed_registry("localhost/img", allowed) == "localhost"  # another port is another registry
    assert disallowed_registry("gcr.io.evil.example/p/img", allowed) == "gcr.io.evil.example"
    assert disallowed_registry("busybox", allowed) == "docker.io"
    assert disallowed_registry("busybox", []) is None  # no list: any registry
    assert disallowed_registry("UPPER", allowed) is None  # invalid: refused for that, naming no registry


def test_a_long_malformed_component_is_checked_in_linear_time() -> None:
    # Docker's component grammar with `[-]*` backtracks exponentially on this; ours must not.
    component = "a" * 5000 + "-"
    assert image_errors(component) == [f'Invalid image name ({component}), {SEPARATOR_RULE} (failed on "{component}")']


@settings(max_examples=500, deadline=None)
@given(
    image=st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(["a", "B", "0", ".", "_", "-", "/", ":", "@", "sha256", "localhost", "5000", "://"]),
            max_size=15,
        ).map("".join),
    )
)
def test_any_text_is_validated_without_raising(image: str) -> None:
    reasons = image_errors(image)
    assert all(isinstance(reason, str) for reason in reasons)
    if reasons:
        with pytest.raises(InvalidImageReference):
            parse_image(image)
    else:
        reference = parse_image(image)
        assert with_default_tag(image).startswith(image)
        assert (with_default_tag(image) == image) == (reference.tag is not None or reference.digest is not None)
