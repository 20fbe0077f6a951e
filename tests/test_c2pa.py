"""C2PA signing (issue 10): every signed format read back with c2pa-python's Reader, the
verdict of datadiligence's C2PA rule, our XMP still read by exiftool, the cache key, the
key kept out of everything written, and the `c2pa test-cert` command."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build.job import Options
from ssg_dmi.errors import ConfigError
from ssg_dmi.images.provenance import USE_OF, entries, load_signing, manifest
from ssg_dmi.images.untrusted_chain import write_test_chain
from ssg_dmi.policy import DMI, ImagePolicy
from ssg_dmi.settings import load_settings
from ssg_dmi.settings.signing import C2paSettings

from .builds import build, cli
from .images import encode, photo
from .readers import PLUS, dmi_of, exiftool, needs_exiftool

c2pa = pytest.importorskip("c2pa")

FORMATS = {  # Pillow name, extension, MIME type
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
    "png": ("PNG", "png", "image/png"),
    "webp": ("WEBP", "webp", "image/webp"),
    "avif": ("AVIF", "avif", "image/avif"),
    "gif": ("GIF", "gif", "image/gif"),
    "tiff": ("TIFF", "tif", "image/tiff"),
}
MIME = {ext: mime for _, ext, mime in FORMATS.values()}
# TrustNXT's c2pa-ts (npm @trustnxt/c2pa-ts), a pure TypeScript C2PA implementation: a reader
# that shares no code with c2pa-python's c2pa-rs. `.ci/run` installs it and exports the
# path of its node_modules as SSG_DMI_C2PA_TS (then a missing one fails; else it skips).
C2PA_TS_ENV = "SSG_DMI_C2PA_TS"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
C2PA_TS = Path(os.environ.get(C2PA_TS_ENV) or CACHE / "ssg-dmi-c2pa-ts" / "node_modules")
C2PA_TS_READ = Path(__file__).parent / "c2pa_ts_read.mjs"
USES = ("ai_generative_training", "ai_training", "ai_inference", "data_mining")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_test_chain(tmp_path_factory.mktemp("chain"))


def table(chain: tuple[Path, Path], **extra: Any) -> dict[str, Any]:
    return {"cert": str(chain[0]), "key": str(chain[1]), **extra}


def read(path: Path) -> tuple[Any, dict[str, Any]]:
    """c2pa-python's reading of a file: (Reader, its active manifest)."""
    reader = c2pa.Reader(MIME[path.suffix[1:]], io.BytesIO(path.read_bytes()))
    return reader, reader.get_active_manifest()


def labels(active: dict[str, Any]) -> dict[str, Any]:
    return {a["label"]: a["data"] for a in active["assertions"]}


def uses(active: dict[str, Any], label: str, prefix: str) -> dict[str, str]:
    found = labels(active)[label]["entries"]
    return {u: found[f"{prefix}.{u}"]["use"] for u in USES}


def site_with(tmp_path: Path, fmt: str, size: tuple[int, int] = (640, 427)) -> Path:
    pil, ext, _ = FORMATS[fmt]
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    im = photo(size) if fmt != "gif" else photo(size).convert("P")
    (site / "img" / f"a.{ext}").write_bytes(encode(im, pil))
    return site


def datadiligence_allows(path: Path) -> bool:
    from datadiligence.rules._c2pa import C2PAMetadataRule

    return bool(C2PAMetadataRule().is_allowed(path=str(path)))


@needs_exiftool
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_signed_read_back_and_refused_by_datadiligence(
    tmp_path: Path, chain: tuple[Path, Path], fmt: str
) -> None:
    site = site_with(tmp_path, fmt)
    report = build(site, c2pa=table(chain), dmi="DMI-PROHIBITED", widths=[320])
    assert not report.errors
    path = site / "img" / f"a.{FORMATS[fmt][1]}"
    reader, active = read(path)
    assert reader.get_validation_state() == "Valid"  # untrusted signer, intact binding
    failures = reader.get_validation_results()["activeManifest"]["failure"]
    assert [f["code"] for f in failures] == ["signingCredential.untrusted"]
    assert uses(active, "cawg.training-mining", "cawg") == dict.fromkeys(USES, "notAllowed")
    assert uses(active, "c2pa.training-mining", "c2pa") == dict.fromkeys(USES, "notAllowed")
    actions = [a["action"] for a in labels(active)["c2pa.actions.v2"]["actions"]]
    assert actions[0] == "c2pa.opened" and active["ingredients"][0]["relationship"] == "parentOf"
    assert "thumbnail" not in active  # disabled: it would add 0.2-1.2 MB
    assert datadiligence_allows(path) is False
    # Our XMP, written before the manifest, is still what exiftool reads.
    assert dmi_of(exiftool(path)[0]) == "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"
    # The default applies to originals only: a variant carries no manifest.
    variant = next(p for p in (site / "img").iterdir() if p != path)
    with pytest.raises(c2pa.C2paError):
        read(variant)


def test_allowed_policy_is_allowed_by_datadiligence(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    site = site_with(tmp_path, "jpeg")
    assert not build(site, c2pa=table(chain), dmi="DMI-ALLOWED", widths=[320]).errors
    path = site / "img" / "a.jpg"
    _, active = read(path)
    assert uses(active, "c2pa.training-mining", "c2pa") == dict.fromkeys(USES, "allowed")
    assert datadiligence_allows(path) is True


@pytest.mark.parametrize(
    ("dmi", "expected"),
    [
        (DMI.ALLOWED, ("allowed",) * 4),
        (DMI.PROHIBITED, ("notAllowed",) * 4),
        (DMI.PROHIBITED_AIMLTRAINING, ("notAllowed", "notAllowed", "allowed", "allowed")),
        (DMI.PROHIBITED_GENAIMLTRAINING, ("notAllowed", "allowed", "allowed", "allowed")),
        (
            DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING,
            ("notAllowed", "notAllowed", "notAllowed", "constrained"),
        ),
        (DMI.PROHIBITED_SEECONSTRAINT, ("constrained",) * 4),
    ],
)
def test_dmi_to_training_mining_entries(dmi: DMI, expected: tuple[str, ...]) -> None:
    policy = ImagePolicy(dmi=dmi, other_constraints="license at example.com")
    for prefix in ("cawg", "c2pa"):
        got = entries(policy, prefix)
        assert got is not None
        assert tuple(got[f"{prefix}.{u}"]["use"] for u in USES) == expected
        for entry in got.values():
            assert ("constraint_info" in entry) == (entry["use"] == "constrained")
    if dmi is DMI.PROHIBITED_SEECONSTRAINT:
        assert got["c2pa.ai_training"]["constraint_info"] == "license at example.com"


def test_unspecified_makes_no_training_mining_claim() -> None:
    assert set(USE_OF) == set(DMI) - {DMI.UNSPECIFIED}
    made = manifest(ImagePolicy(dmi=DMI.UNSPECIFIED), "c2pa.edited.metadata")
    assert [a["label"] for a in made["assertions"]] == ["c2pa.actions"]


def test_variants_name_the_signed_original_as_parent(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    site = site_with(tmp_path, "jpeg")
    report = build(site, c2pa=table(chain, apply_to="all"), widths=[160, 320], formats=["webp"])
    assert not report.errors
    original = site / "img" / "a.jpg"
    found = sorted(p for p in (site / "img").iterdir() if p != original)
    assert len(found) == 2
    _, parent = read(original)
    for variant in found:
        reader, active = read(variant)
        assert reader.get_validation_state() == "Valid"
        actions = [a["action"] for a in labels(active)["c2pa.actions.v2"]["actions"]]
        assert actions == ["c2pa.opened", "c2pa.resized"]
        (ingredient,) = active["ingredients"]
        assert ingredient["title"] == "a.jpg" and ingredient["relationship"] == "parentOf"
        # The ingredient is the signed original, its manifest carried along.
        assert ingredient["active_manifest"] == parent["label"]
        assert labels(active)["cawg.training-mining"] == labels(parent)["cawg.training-mining"]


def test_cache_key_has_the_certificate_fingerprint_never_the_key(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    other = write_test_chain(tmp_path / "other")
    signing = load_signing(C2paSettings(str(chain[0]), str(chain[1])))
    other_signing = load_signing(C2paSettings(str(other[0]), str(other[1])))
    plain = Options((480,), ("webp",), {}, "tag", 10**6, False)
    one = dataclasses.replace(plain, c2pa=signing)
    two = dataclasses.replace(plain, c2pa=other_signing)
    assert "c2pa" not in plain.key_parts()  # unsigned builds keep their cache keys
    assert one.key_parts()["c2pa"] == [signing.fingerprint, "es256", None, "originals"]
    assert one.key_parts() != two.key_parts()
    assert "PRIVATE" not in json.dumps(one.key_parts())
    # A build leaves no key material in the cache, the report or the site.
    site = site_with(tmp_path, "png")
    cache = tmp_path / "cache"
    report = build(site, cache, c2pa=table(chain))
    assert not report.errors
    key_pem = chain[1].read_bytes()
    body = key_pem.split(b"-----")[2].strip().split(b"\n")[0]
    for folder in (cache, site):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"PRIVATE KEY" not in data and body not in data, path
    assert b"PRIVATE KEY" not in repr(report).encode()
    # A second build comes from the cache, signed bytes and all.
    signed = (site / "img" / "a.png").read_bytes()
    again = build(site, cache, c2pa=table(chain))
    assert again.summary.cache_hits == 1
    assert (site / "img" / "a.png").read_bytes() == signed


def test_key_from_an_environment_variable(
    tmp_path: Path, chain: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = site_with(tmp_path, "webp")
    raw = {"cert": str(chain[0]), "key_env": "SSG_DMI_TEST_C2PA_KEY"}
    with pytest.raises(ConfigError, match="SSG_DMI_TEST_C2PA_KEY is not set"):
        build(site, c2pa=raw)
    monkeypatch.setenv("SSG_DMI_TEST_C2PA_KEY", chain[1].read_text())
    assert not build(site, c2pa=raw).errors
    assert read(site / "img" / "a.webp")[0].get_validation_state() == "Valid"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"key": "k.pem"}, "`c2pa`: `cert` (the PEM certificate chain file) is required"),
        ({"cert": "c.pem"}, "`c2pa`: set exactly one of `key`"),
        ({"cert": "c.pem", "key": "k", "key_env": "K"}, "`c2pa`: set exactly one of `key`"),
        ({"cert": "c.pem", "key": "k", "alg": "rsa"}, "`c2pa.alg`: 'rsa' is not allowed"),
        ({"cert": "c.pem", "key": "k", "apply_to": "some"}, "`c2pa.apply_to`: 'some'"),
        ({"cert": "c.pem", "key": "k", "tsa_url": "ftp://x"}, "`c2pa.tsa_url`: expected an http"),
        ({"cert": "c.pem", "kee": "k"}, "`c2pa`: unknown key `kee` (did you mean `key`?)"),
        ("chain.pem", "`c2pa`: expected a table"),
    ],
)
def test_c2pa_table_mistakes(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"t: {message}")):
        load_settings({"c2pa": raw}, "t")


def test_a_self_signed_certificate_or_missing_file_is_one_config_error(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    root = x509.load_pem_x509_certificates(chain[0].read_bytes())[1]
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    site = site_with(tmp_path, "jpeg")
    before = (site / "img" / "a.jpg").read_bytes()
    with pytest.raises(ConfigError, match="cannot sign"):
        build(site, c2pa={"cert": str(tmp_path / "root.pem"), "key": str(chain[1])})
    with pytest.raises(ConfigError, match="`c2pa.cert`: cannot read"):
        build(site, c2pa={"cert": str(tmp_path / "none.pem"), "key": str(chain[1])})
    assert (site / "img" / "a.jpg").read_bytes() == before  # refused before any image


def test_cli_test_cert_then_build_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "c2pa", "test-cert", "certs")
    assert code == 0 and "UNTRUSTED" in out
    key = tmp_path / "certs" / "untrusted-test-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    site = site_with(tmp_path, "jpeg")
    (site / "index.html").write_text('<html><head></head><body><img src="img/a.jpg"></body></html>')
    config = out.split("Add to ssg-dmi.toml:\n", 1)[1]
    (tmp_path / "ssg-dmi.toml").write_text(config + '\napply_to = "all"\n')
    code, out, err = cli(capsys, "build", "site", "--no-cache")
    assert code == 0, err
    assert "PRIVATE" not in out + err
    signed = list((site / "img").iterdir())
    # the original and its default-width variants below 640 px (320 … 544), plus 640
    assert len(signed) == 6
    for path in signed:
        assert read(path)[0].get_validation_state() == "Valid", path
    code, out, err = cli(capsys, "check", "site")
    assert code == 0, out + err


@needs_exiftool
def test_without_c2pa_settings_c2pa_is_never_imported(tmp_path: Path) -> None:
    site = site_with(tmp_path, "jpeg")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ssg_dmi.build.pipeline import run\n"
        "from ssg_dmi.settings import load_settings\n"
        f"run(Path({str(site)!r}), load_settings({{'jobs': 1}}), progress=False)\n"
        "assert 'c2pa' not in sys.modules, 'c2pa imported'\n"
        "assert 'cryptography' not in sys.modules, 'cryptography imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert b"c2pa" not in (site / "img" / "a.jpg").read_bytes()
    assert dmi_of(exiftool(site / "img" / "a.jpg")[0])  # the build did tag it


def test_a_signed_source_stays_the_parent_and_our_own_output_never_nests(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    # A source that already has Content Credentials (a camera's, an editor's) is the
    # parent ingredient, its manifest carried along.
    site = site_with(tmp_path, "jpeg")
    path = site / "img" / "a.jpg"
    camera = {
        "claim_generator_info": [{"name": "camera-app", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                        }
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo("es256", chain[0].read_bytes(), chain[1].read_bytes(), None)
    with c2pa.Context(None, c2pa.Signer.from_info(info)) as context:
        out = io.BytesIO()
        c2pa.Builder(camera, context).sign("image/jpeg", io.BytesIO(path.read_bytes()), out)
    path.write_bytes(out.getvalue())
    _, source = read(path)
    assert not build(site, c2pa=table(chain), widths=[320]).errors
    reader, active = read(path)
    assert active["ingredients"][0]["active_manifest"] == source["label"]
    assert len(json.loads(reader.json())["manifests"]) == 2
    # Built again without a cache over its own output: the parent is the file as tagged, so
    # manifests never pile up build after build (the earlier chain is not carried on).
    size = path.stat().st_size
    assert not build(site, c2pa=table(chain), widths=[320]).errors
    reader, again = read(path)
    assert again["label"] != active["label"]  # signed anew
    assert len(json.loads(reader.json())["manifests"]) == 1
    assert path.stat().st_size < size


def test_inspect_and_check_read_the_manifest_back(
    tmp_path: Path, chain: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_with(tmp_path, "jpeg")
    assert not build(site, c2pa=table(chain), dmi="DMI-PROHIBITED", widths=[320]).errors
    path = site / "img" / "a.jpg"
    code, out, _ = cli(capsys, "inspect", "--json", str(path))
    (shown,) = json.loads(out)
    assert shown["c2pa"]["state"] == "Valid" and shown["c2pa"]["untrusted_signer"] is True
    assert shown["c2pa"]["training_mining"]["c2pa.training-mining"] == {
        f"c2pa.{u}": "notAllowed" for u in USES
    }
    code, out, _ = cli(capsys, "check", str(site), "--dmi", "DMI-PROHIBITED")
    assert "image-c2pa-wrong" not in out, out
    # The policy says otherwise: the manifest's assertion disagrees (both labels).
    code, out, _ = cli(capsys, "check", str(site), "--dmi", "DMI-PROHIBITED-AIMLTRAINING")
    wrong = [line for line in out.splitlines() if "image-c2pa-wrong" in line]
    assert code == 1 and len(wrong) == 2, out
    assert "ai_inference=notAllowed" in wrong[0] and "ai_inference=allowed" in wrong[0]
    # A byte changed after signing (in the compressed data): the hard binding fails. Not
    # next to an 0xFF, nor one that becomes 0xFF: that would make a marker of the scan's
    # bytes, and the file would not parse at all (the bytes depend on Pillow's noise).
    data = bytearray(path.read_bytes())
    at = next(
        i
        for i in range(len(data) - 100, 0, -1)
        if data[i] < 0xFE and data[i - 1] != 0xFF and data[i + 1] != 0xFF
    )
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    code, out, _ = cli(capsys, "check", str(site), "--dmi", "DMI-PROHIBITED")
    assert code == 1 and "image-c2pa-wrong" in out and "does not validate" in out, out


@needs_exiftool
def test_a_file_the_sdk_refuses_stays_tagged_with_a_note(
    tmp_path: Path, chain: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ssg_dmi.build import job
    from ssg_dmi.errors import ImageError

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise ImageError("C2PA signing failed (unsupported)")

    site = site_with(tmp_path, "png")
    signing = load_signing(C2paSettings(str(chain[0]), str(chain[1])))  # before the patch
    monkeypatch.setattr(job, "sign", refuse)
    monkeypatch.setattr("ssg_dmi.build.pipeline.load_signing", lambda _: signing)
    report = build(site, c2pa=table(chain), dmi="DMI-PROHIBITED")
    assert not report.errors
    assert report.notes["img/a.png"] == [
        "C2PA signing failed (unsupported); left tagged but unsigned"
    ]
    assert (
        dmi_of(exiftool(site / "img" / "a.png")[0])
        == "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"
    )


def c2pa_ts(*paths: Path) -> dict[str, Any]:
    """c2pa-ts's reading of ``paths``: {path: {valid, codes, tm}}."""
    node = shutil.which("node")
    if node is None or not (C2PA_TS / "@trustnxt" / "c2pa-ts").is_dir():
        if os.environ.get(C2PA_TS_ENV):
            pytest.fail(f"{C2PA_TS_ENV} is set but node or c2pa-ts is missing at {C2PA_TS}")
        pytest.skip("c2pa-ts not installed (npm install @trustnxt/c2pa-ts; see .ci/run)")
    done = subprocess.run(
        [node, str(C2PA_TS_READ), str(C2PA_TS), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("fmt", ["jpeg", "png", "avif"])  # what c2pa-ts reads (not WebP)
def test_an_independent_reader_c2pa_ts_validates_and_reads_both_labels(
    tmp_path: Path, chain: tuple[Path, Path], fmt: str
) -> None:
    site = site_with(tmp_path, fmt)
    assert not build(site, c2pa=table(chain), dmi="DMI-PROHIBITED-AIMLTRAINING").errors
    path = site / "img" / f"a.{FORMATS[fmt][1]}"
    got = c2pa_ts(path)[str(path)]
    assert got["valid"] is True, got
    binding = "assertion.bmffHash.match" if fmt == "avif" else "assertion.dataHash.match"
    assert binding in got["codes"] and "claimSignature.validated" in got["codes"]
    expected = dict(zip(USES, ("notAllowed", "notAllowed", "allowed", "allowed"), strict=True))
    for label, prefix in (("cawg.training-mining", "cawg"), ("c2pa.training-mining", "c2pa")):
        assert got["tm"][label] == {f"{prefix}.{u}": use for u, use in expected.items()}
    # One bit changed after signing: c2pa-ts no longer validates the file.
    data = bytearray(path.read_bytes())
    data[len(data) - 40] ^= 0x01
    path.write_bytes(bytes(data))
    assert c2pa_ts(path)[str(path)]["valid"] is False


def test_signing_without_the_extra_is_one_config_error(
    tmp_path: Path, chain: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # as if c2pa-python were not installed
    site = site_with(tmp_path, "jpeg")
    with pytest.raises(ConfigError, match=re.escape("pip install 'ssg-dmi[c2pa]'")):
        build(site, c2pa=table(chain))


def test_tag_signs_when_c2pa_is_set(
    tmp_path: Path, chain: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = site_with(tmp_path, "jpeg") / "img"
    (src / "b.png").write_bytes(encode(photo((200, 150)), "PNG"))
    (src / "c.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>'
    )
    config = tmp_path / "ssg-dmi.toml"
    config.write_text(f'dmi = "DMI-PROHIBITED"\n[c2pa]\ncert = "{chain[0]}"\nkey = "{chain[1]}"\n')
    out_dir = tmp_path / "out"
    code, out, err = cli(capsys, "tag", "--config", str(config), "--out", str(out_dir), str(src))
    assert code == 0, err
    assert "PRIVATE" not in out + err
    for name in ("a.jpg", "b.png"):  # each output signed, its source the parent
        reader, active = read(out_dir / name)
        assert reader.get_validation_state() == "Valid", name
        assert uses(active, "cawg.training-mining", "cawg") == dict.fromkeys(USES, "notAllowed")
        assert uses(active, "c2pa.training-mining", "c2pa") == dict.fromkeys(USES, "notAllowed")
        (ingredient,) = active["ingredients"]
        assert ingredient["title"] == name and ingredient["relationship"] == "parentOf"
        assert b"c2pa" not in (src / name).read_bytes()  # the sources are left alone
    assert b"c2pa" not in (out_dir / "c.svg").read_bytes()
    assert "note: " in err and "not signed with C2PA: ssg-dmi signs raster images only" in err
    # Without the table, `tag` signs nothing (and the key is never needed).
    config.write_text('dmi = "DMI-PROHIBITED"\n')
    code, _, err = cli(capsys, "tag", "--config", str(config), "--in-place", str(src / "a.jpg"))
    assert code == 0, err
    assert b"c2pa" not in (src / "a.jpg").read_bytes()


def c2pa_missing(site: Path, **values: Any) -> list[tuple[str, str]]:
    from ssg_dmi.audit.folder import check_site

    from .builds import settings

    report = check_site(site, settings(**values))
    return [(f.path, f.severity) for f in report.findings if f.code == "image-c2pa-missing"]


@pytest.mark.parametrize("apply_to", ["originals", "all"])
def test_check_flags_an_image_the_build_signs_that_has_no_manifest(
    tmp_path: Path, chain: tuple[Path, Path], apply_to: str
) -> None:
    values: dict[str, Any] = {"dmi": "DMI-PROHIBITED", "widths": [320], "formats": ["webp"]}
    signed = {**values, "c2pa": table(chain, apply_to=apply_to)}
    site = site_with(tmp_path / "signed", "jpeg")
    (site / "img" / "c.svg").write_text(  # never signed: never missing its manifest
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>'
    )
    assert not build(site, **signed).errors
    plain = site_with(tmp_path / "plain", "jpeg")
    assert not build(plain, **values).errors
    (variant,) = (p.name for p in (site / "img").iterdir() if p.suffix == ".webp")
    (unsigned_variant,) = (p for p in (plain / "img").iterdir() if p.suffix == ".webp")
    assert c2pa_missing(site, **signed) == []  # a clean signed build
    assert c2pa_missing(site, **values) == []  # without [c2pa], no manifest is expected
    # An unsigned (but tagged) copy in place of the signed original, then of the variant.
    shutil.copyfile(plain / "img" / "a.jpg", site / "img" / "a.jpg")
    assert c2pa_missing(site, **signed) == [("img/a.jpg", "error")]
    shutil.copyfile(unsigned_variant, site / "img" / variant)
    expected = [("img/a.jpg", "error")]
    if apply_to == "all":  # variants are signed too, so one without a manifest is flagged
        expected.append((f"img/{variant}", "error"))
    assert sorted(c2pa_missing(site, **signed)) == sorted(expected)


def test_check_url_flags_a_served_image_the_build_signs_that_has_no_manifest(
    tmp_path: Path, chain: tuple[Path, Path]
) -> None:
    """The same rule over HTTP: `check --url` reads the served bytes."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from ssg_dmi.audit.served import check_url

    from .builds import settings
    from .servers import threaded

    values: dict[str, Any] = {"dmi": "DMI-PROHIBITED", "widths": [320], "formats": ["webp"]}
    signed = {**values, "c2pa": table(chain)}
    site = site_with(tmp_path / "signed", "jpeg")
    page = '<!doctype html><html><head><title>t</title></head><body><img src="img/a.jpg" alt="a">'
    (site / "index.html").write_text(page + "</body></html>")
    plain = site_with(tmp_path / "plain", "jpeg")
    assert not build(site, **signed).errors and not build(plain, **values).errors

    def missing() -> list[str]:
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
        with threaded(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
            report = check_url(url, settings(**signed), time_limit=20)
        assert any(u.endswith("/img/a.jpg") for u in report.checked)
        return [f.path for f in report.findings if f.code == "image-c2pa-missing"]

    assert missing() == []
    shutil.copyfile(plain / "img" / "a.jpg", site / "img" / "a.jpg")  # tagged, not signed
    assert [u.rsplit("/", 2)[-2:] for u in missing()] == [["img", "a.jpg"]]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("apply_to", ["originals", "all"])
def test_a_rebuild_from_signed_output_without_a_cache_keeps_the_variant_names(
    tmp_path: Path, chain: tuple[Path, Path], fmt: str, apply_to: str
) -> None:
    """A signature differs on every signing; the variants are named after the original as
    tagged before it, so a rebuild over our own signed output (no cache) keeps every name."""
    values: dict[str, Any] = {
        "dmi": "DMI-PROHIBITED",
        "widths": [160, 320],
        "formats": ["webp"],
        "originals": "tag",
        "c2pa": table(chain, apply_to=apply_to),
    }
    site = site_with(tmp_path, fmt)

    def variants() -> list[str]:
        return sorted(p.name for p in (site / "img").iterdir() if "w." in p.name)

    first = build(site, **values)
    assert not first.errors, first.errors
    names = variants()
    assert len(names) == 2
    again = build(site, **values)
    assert not again.errors and again.stale == []
    assert variants() == names
    reader, _ = read(site / "img" / names[0].split("-")[0])  # the original, signed again
    assert reader.get_validation_state() == "Valid"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_tagging_drops_a_sources_manifest_unless_metadata_is_kept(
    tmp_path: Path, chain: tuple[Path, Path], fmt: str
) -> None:
    """A manifest store is metadata of the "other" kind: its hard binding breaks with our
    rewrite and it may name people and devices. Dropped by default, kept with `keep`
    (where the container keeps other metadata at all)."""
    from ssg_dmi.api import tag_bytes

    site = site_with(tmp_path, fmt)
    assert not build(site, dmi="DMI-PROHIBITED", c2pa=table(chain), widths=[320]).errors
    signed = (site / "img" / f"a.{FORMATS[fmt][1]}").read_bytes()
    assert read(site / "img" / f"a.{FORMATS[fmt][1]}")[0].get_validation_state() == "Valid"
    name = f"a.{FORMATS[fmt][1]}"
    assert b"c2pa" not in tag_bytes(signed, load_settings({}), name=name, lossless=True)
    kept = tag_bytes(signed, load_settings({"metadata": "keep"}), name=name, lossless=True)
    # TIFF's IFD is rebuilt from the tags ssg-dmi knows: its manifest tag never survives.
    assert (b"c2pa" in kept) is (fmt != "tiff")


@needs_exiftool
def test_a_worker_that_cannot_read_the_key_leaves_the_image_tagged_and_says_so(
    tmp_path: Path, chain: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a Dask worker the key file or variable may be missing: the opt-out matters more
    than the signature, so the image is still tagged, unsigned, with a note."""
    from ssg_dmi.images.provenance import Signing

    real = Signing.private_key
    calls = {"n": 0}

    def missing_on_workers(self: Signing) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:  # the build's own check, before any image
            return real(self)
        raise ConfigError("`c2pa.key_env`: the environment variable C2PA_KEY is not set")

    monkeypatch.setattr(Signing, "private_key", missing_on_workers)
    site = site_with(tmp_path, "jpeg")
    report = build(site, dmi="DMI-PROHIBITED", widths=[320], c2pa=table(chain), jobs=1)
    assert report.errors == {}
    assert dmi_of(exiftool(site / "img" / "a.jpg")[0]) == PLUS + "DMI-PROHIBITED"
    assert b"c2pa" not in (site / "img" / "a.jpg").read_bytes()
    (note,) = [n for n in report.notes["img/a.jpg"] if "unsigned" in n]
    assert "C2PA_KEY is not set" in note and note.endswith("left tagged but unsigned")
