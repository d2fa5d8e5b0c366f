"""Test media, generated on demand with the product's generator of synthetic media
(`cite_live.demo.media`: ffmpeg's synthetic sources), mutagen and Pillow.

Nothing binary is checked in: each fixture is a small function that writes its file(s) into an
empty directory and returns the path of the file a test should hand to the code under test.
`make(name, directory)` builds a fixture once into `directory/name/` and reuses it afterwards
(`build_once`); it is safe to call from several threads or processes sharing `directory`.

Usable outside pytest too (bench scripts): `make("video_1080p_h264_aac", Path("cache"))`.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mutagen.flac
import mutagen.id3
import mutagen.mp4
import mutagen.oggopus
import mutagen.oggvorbis
import numpy as np
from PIL import Image, ImageDraw

from cite_live.demo.media import build_once, ffmpeg, lavfi, pattern, tones

# mutagen ships no type hints: its constructors are used through untyped aliases.
flac: Any = mutagen.flac
id3: Any = mutagen.id3
mp4: Any = mutagen.mp4
oggopus: Any = mutagen.oggopus
oggvorbis: Any = mutagen.oggvorbis

Builder = Callable[[Path], Path]

TITLE = "Répétition générale"
ARTISTS = ["Quatuor Isère", "Léa Martin"]
ALBUM = "Sessions de la Cité"
DATE = "2024"
GENRE = "Jazz"
TRACK = "3"
TRACK_TOTAL = 12

HOSTILE_TITLE = '<script>alert("x")</script><b>Bold</b>'
HOSTILE_ARTIST = '<img src=x onerror=alert(1)> & "Les <i>Échos</i>"'
HOSTILE_ALBUM_BYTES = 100 * 1024

LONG_DECLARED_SECONDS = 10 * 3600


def split(options: str) -> list[str]:
    """ffmpeg options written as on a command line (none of them contains a space)."""
    return options.split()


def cover_image(size: int = 480, fmt: str = "JPEG") -> bytes:
    """A non-uniform cover picture (gradient, disc, frame) so image code has something to see."""
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    red = np.tile(ramp, (size, 1))
    green = red.T
    blue = np.full((size, size), 140.0)
    pixels = np.stack([red, green, blue], axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    margin = size // 5
    draw.ellipse((margin, margin, size - margin, size - margin), fill=(250, 240, 200))
    draw.rectangle((4, 4, size - 5, size - 5), outline=(20, 20, 20), width=6)
    buffer = io.BytesIO()
    options = {"quality": 85} if fmt == "JPEG" else {}
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --- video ---------------------------------------------------------------------------------------


def video_1080p_h264_aac(directory: Path) -> Path:
    out = directory / "concert_1080p.mp4"
    # Drawing the pattern at 1080p and encoding it finely would cost seconds of CPU per session;
    # a quarter-size pattern scaled up keeps motion and detail enough for every test.
    graph = "testsrc2=size=480x270:rate=30:duration=14,scale=1920:1080:flags=neighbor"
    # A black first second, as captures often start: poster code must look further in.
    black_start = "drawbox=color=black:t=fill:enable='lt(t,1)'"
    ffmpeg(
        *lavfi(graph),
        *tones(14),
        *["-vf", black_start],
        *split("-c:v libx264 -preset ultrafast -bf 2 -crf 30 -pix_fmt yuv420p -g 60"),
        *split("-c:a aac -b:a 96k -ac 2 -movflags +faststart"),
        *["-metadata", f"title={TITLE}", "-metadata", f"artist={ARTISTS[0]}"],
        str(out),
    )
    return out


def portrait_hevc_mov_rotated(directory: Path) -> Path:
    coded = directory / "coded.mov"
    ffmpeg(
        *pattern(640, 360, 4),
        *tones(4),
        *split("-c:v libx265 -preset ultrafast -x265-params log-level=error -tag:v hvc1"),
        *split("-pix_fmt yuv420p -c:a aac -b:a 96k"),
        str(coded),
    )
    # This ffmpeg has no -display_rotation and drops the rotate tag when encoding, but a stream
    # copy turns the tag into the track's display matrix, as a phone writes it.
    out = directory / "phone_portrait.mov"
    ffmpeg("-i", str(coded), "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))
    coded.unlink()
    return out


def vp9_opus51_mkv(directory: Path) -> Path:
    out = directory / "surround.mkv"
    ffmpeg(
        *pattern(320, 240, 4),
        *tones(4, channels=6),
        *split("-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus -b:a 128k"),
        str(out),
    )
    return out


def video_no_audio(directory: Path) -> Path:
    out = directory / "silent_clip.mp4"
    ffmpeg(
        *pattern(320, 240, 4),
        *split("-c:v libx264 -preset veryfast -pix_fmt yuv420p -an"),
        str(out),
    )
    return out


def odd_dimensions(directory: Path) -> Path:
    out = directory / "odd_853x479.mp4"
    # MPEG-4 Part 2 keeps odd sizes as they are (libx264 refuses them in 4:2:0).
    ffmpeg(
        *pattern(853, 479, 4, fps=25),
        *tones(4),
        *split("-c:v mpeg4 -q:v 5 -c:a aac -b:a 96k"),
        str(out),
    )
    return out


def anamorphic_mpeg2(directory: Path) -> Path:
    out = directory / "dv_capture.mpg"
    ffmpeg(
        *pattern(720, 576, 4, fps=25),
        *tones(4),
        *split("-c:v mpeg2video -b:v 2M -aspect 16:9 -pix_fmt yuv420p -c:a mp2 -b:a 192k -f vob"),
        str(out),
    )
    return out


# --- audio ---------------------------------------------------------------------------------------


def flac_24bit_picture(directory: Path) -> Path:
    out = directory / "session.flac"
    ffmpeg(*tones(8, rate=48000), "-c:a", "flac", "-sample_fmt", "s32", str(out))
    audio = flac.FLAC(out)
    audio["TITLE"] = TITLE
    audio["ARTIST"] = ARTISTS
    audio["ALBUM"] = ALBUM
    audio["DATE"] = DATE
    audio["GENRE"] = GENRE
    audio["TRACKNUMBER"] = TRACK
    picture = flac.Picture()
    picture.type = 3  # front cover
    picture.mime = "image/png"
    picture.width = picture.height = 480
    picture.depth = 24
    picture.data = cover_image(480, "PNG")
    audio.add_picture(picture)
    audio.save()
    return out


def mp3_id3v24_apic(directory: Path) -> Path:
    out = directory / "single.mp3"
    ffmpeg(
        *tones(6, rate=44100),
        *split("-c:a libmp3lame -b:a 128k -id3v2_version 0 -write_xing 1"),
        str(out),
    )
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=TITLE))
    tags.add(id3.TPE1(encoding=3, text=ARTISTS))
    tags.add(id3.TALB(encoding=3, text=ALBUM))
    tags.add(id3.TDRC(encoding=3, text=DATE))
    tags.add(id3.TCON(encoding=3, text=GENRE))
    tags.add(id3.TRCK(encoding=3, text=f"{TRACK}/{TRACK_TOTAL}"))
    tags.add(id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="Cover", data=cover_image()))
    tags.save(out, v2_version=4)
    return out


def m4a_itunes_covr(directory: Path) -> Path:
    out = directory / "track.m4a"
    ffmpeg(*tones(6, rate=44100), "-c:a", "aac", "-b:a", "128k", "-f", "ipod", str(out))
    audio = mp4.MP4(out)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    assert tags is not None
    tags["\xa9nam"] = [TITLE]
    tags["\xa9ART"] = ARTISTS
    tags["\xa9alb"] = [ALBUM]
    tags["\xa9day"] = [DATE]
    tags["\xa9gen"] = [GENRE]
    tags["trkn"] = [(int(TRACK), TRACK_TOTAL)]
    tags["covr"] = [mp4.MP4Cover(cover_image(), imageformat=mp4.MP4Cover.FORMAT_JPEG)]
    audio.save()
    return out


def wav_96k_mono(directory: Path) -> Path:
    out = directory / "field_recording.wav"
    ffmpeg(*tones(5, rate=96000, channels=1), "-c:a", "pcm_s24le", str(out))
    return out


def ogg_vorbis(directory: Path) -> Path:
    out = directory / "demo.ogg"
    ffmpeg(*tones(5, rate=44100), "-c:a", "libvorbis", "-q:a", "2", str(out))
    audio = oggvorbis.OggVorbis(out)
    _vorbis_comments(audio)
    audio.save()
    return out


def opus(directory: Path) -> Path:
    out = directory / "podcast.opus"
    ffmpeg(*tones(5, rate=48000), "-c:a", "libopus", "-b:a", "64k", str(out))
    audio = oggopus.OggOpus(out)
    _vorbis_comments(audio)
    audio.save()
    return out


def _vorbis_comments(audio: Any) -> None:
    audio["TITLE"] = TITLE
    audio["ARTIST"] = ARTISTS
    audio["ALBUM"] = ALBUM
    audio["DATE"] = DATE
    audio["GENRE"] = GENRE
    audio["TRACKNUMBER"] = TRACK


# --- hostile input -------------------------------------------------------------------------------


def empty(directory: Path) -> Path:
    out = directory / "empty.mp4"
    out.write_bytes(b"")
    return out


def text_as_mp3(directory: Path) -> Path:
    out = directory / "notes.mp3"
    out.write_text("Ceci n'est pas un MP3.\nJust some words in a text file.\n" * 20)
    return out


def _small_mp4(path: Path, seconds: float = 2, faststart: bool = True) -> Path:
    flags = ["-movflags", "+faststart"] if faststart else []
    ffmpeg(
        *pattern(320, 240, seconds, fps=25),
        *tones(seconds),
        *split("-c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k"),
        *flags,
        str(path),
    )
    return path


def truncated_mp4(directory: Path) -> Path:
    """A valid MP4 (index first) cut in half: the index promises samples that are not there."""
    whole = _small_mp4(directory / "whole.mp4", seconds=4)
    out = directory / "truncated.mp4"
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    whole.unlink()
    return out


def truncated_mp4_no_moov(directory: Path) -> Path:
    """A camera-style MP4 (index written last) cut before its moov box: no index at all."""
    whole = _small_mp4(directory / "whole.mp4", seconds=4, faststart=False)
    data = whole.read_bytes()
    moov_at = _top_level_box_offset(data, b"moov")
    out = directory / "truncated_no_moov.mp4"
    out.write_bytes(data[:moov_at])
    whole.unlink()
    return out


def _hostile_target(directory: Path) -> Path:
    """A real, tiny TS clip beside a smuggled playlist, so a naive prober would succeed."""
    target = directory / "target.ts"
    ffmpeg(
        *pattern(160, 120, 1, fps=25),
        *split("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -f mpegts"),
        str(target),
    )
    return target


def playlist_as_mp4(directory: Path) -> Path:
    target = _hostile_target(directory)
    out = directory / "playlist.mp4"
    out.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:10.0,\nfile:///etc/passwd\n"
        f"#EXTINF:1.0,\n{target.name}\n#EXT-X-ENDLIST\n"
    )
    return out


def ffconcat(directory: Path) -> Path:
    target = _hostile_target(directory)
    out = directory / "concat.mp4"
    out.write_text(f"ffconcat version 1.0\nfile '{target.name}'\nfile '/etc/passwd'\n")
    return out


def still_image(directory: Path) -> Path:
    out = directory / "photo.mp4"
    out.write_bytes(cover_image(320, "PNG"))
    return out


def zip_archive(directory: Path) -> Path:
    out = directory / "archive.mov"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "not a movie\n")
        archive.writestr("cover.jpg", cover_image(64))
    return out


def huge_frame_8192(directory: Path) -> Path:
    out = directory / "huge_frame.mkv"
    # One flat-colour JPEG frame: 64 Mpx once decoded, a few hundred KB on disk, and quick to
    # encode (ffv1 needs gigabytes of memory at this size).
    ffmpeg(
        *lavfi("color=c=0x336699:size=8192x8192:rate=1:duration=1"),
        *split("-frames:v 1 -c:v mjpeg -pix_fmt yuvj420p"),
        str(out),
    )
    return out


def hostile_tags_mp3(directory: Path) -> Path:
    out = directory / "hostile.mp3"
    ffmpeg(
        *tones(2, rate=44100), "-c:a", "libmp3lame", "-b:a", "96k", "-id3v2_version", "0", str(out)
    )
    unit = "Very long album name ✨ "
    album = (unit * (HOSTILE_ALBUM_BYTES // len(unit) + 1))[:HOSTILE_ALBUM_BYTES]
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=HOSTILE_TITLE))
    tags.add(id3.TPE1(encoding=3, text=HOSTILE_ARTIST))
    tags.add(id3.TALB(encoding=3, text=album))
    tags.save(out, v2_version=4)
    return out


def long_declared_mp4(directory: Path) -> Path:
    """Two seconds of media whose header declares ten hours (mvhd, tkhd, mdhd, elst patched)."""
    out = _small_mp4(directory / "ten_hours.mp4", seconds=2)
    data = bytearray(out.read_bytes())
    _declare_duration(data, LONG_DECLARED_SECONDS)
    out.write_bytes(bytes(data))
    return out


# --- MP4 box surgery -----------------------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"edts", b"minf", b"stbl"}


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (type, box offset, payload offset, box end) for the boxes in data[start:end]."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise ValueError(f"malformed box {kind!r} at {offset}")
        yield kind, offset, offset + header, offset + size
        offset += size


def _top_level_box_offset(data: bytes, kind: bytes) -> int:
    for found, offset, _payload, _end in _boxes(data, 0, len(data)):
        if found == kind:
            return offset
    raise ValueError(f"no {kind!r} box")


def _declare_duration(data: bytearray, seconds: int) -> None:
    movie_timescale = 0

    def patch_duration(at: int, version: int, value: int) -> None:
        struct.pack_into(">Q" if version == 1 else ">I", data, at, value)

    def walk(start: int, end: int) -> None:
        nonlocal movie_timescale
        for kind, _box, payload, box_end in _boxes(data, start, end):
            version = data[payload]
            body = payload + 4  # after version and flags
            if kind == b"mvhd":
                times = 16 if version == 1 else 8
                (movie_timescale,) = struct.unpack_from(">I", data, body + times)
                patch_duration(body + times + 4, version, seconds * movie_timescale)
            elif kind == b"tkhd":
                at = body + (28 if version == 1 else 20)  # times, track id, reserved
                patch_duration(at, version, seconds * movie_timescale)
            elif kind == b"mdhd":
                times = 16 if version == 1 else 8
                (timescale,) = struct.unpack_from(">I", data, body + times)
                patch_duration(body + times + 4, version, seconds * timescale)
            elif kind == b"elst":
                (count,) = struct.unpack_from(">I", data, body)
                entry_size = 20 if version == 1 else 12
                for index in range(count):
                    patch_duration(
                        body + 4 + index * entry_size, version, seconds * movie_timescale
                    )
            elif kind in _CONTAINERS:
                walk(payload, box_end)

    walk(0, len(data))


# --- a stage capture: camera grain and stage lighting ---------------------------------------------

STAGE_CAPTURE_BITRATE = 3_800_000
STAGE_CAPTURE_SECONDS = 4


def stage_capture_graph(seconds: float, fps: int = 30) -> str:
    """A 1080p evening on stage, as a camera records it: a slowly shifting coloured wash on a
    textured backdrop, two performers crossing it, a follow spot, a breathing light level and
    a sensor's grain that changes every frame (what makes x264 spend its bits).

    The scene is drawn at a quarter of the size and scaled up, soft as a real lens; only the
    grain is drawn at full size.
    """
    return ",".join(
        [
            "gradients=s=480x270:c0=0x3a2a4e:c1=0xa0602f:c2=0x1b3a6a:nb_colors=3:speed=0.02"
            f":rate={fps}:duration={seconds}",
            "format=yuv420p",
            "noise=c0s=24:c1s=8:c2s=8",
            "gblur=sigma=1",
            "drawbox=x='180+120*sin(t*0.9)':y=110:w=36:h=120:color=0xf0c8a0:t=fill",
            "drawbox=x='300+60*sin(t*1.7+1)':y=120:w=30:h=110:color=0x5070a0:t=fill",
            "scale=1920:1080:flags=bicubic",
            "eq=brightness='0.03*sin(2*PI*t/3)':eval=frame",
            "vignette=angle=PI/4:x0='w*0.41+w/4*sin(t*0.9)':y0='h*0.5':eval=frame",
            "noise=c0s=20:c0f=t+u:c1s=6:c2s=6:c1f=t:c2f=t",
        ]
    )


def stage_capture(
    path: Path, seconds: float = STAGE_CAPTURE_SECONDS, bitrate: int = STAGE_CAPTURE_BITRATE
) -> Path:
    """The stage at a camera's steady ``bitrate`` (H.264 + AAC in MP4): a good encoder's work
    (x264 "medium"), so the grain it kept costs a faster re-encode more than it cost the source."""
    rate = str(bitrate)
    ffmpeg(
        *lavfi(stage_capture_graph(seconds)),
        *tones(seconds),
        *split("-c:v libx264 -preset medium -pix_fmt yuv420p -g 60"),
        *["-b:v", rate, "-maxrate", rate, "-bufsize", str(2 * bitrate)],
        *split("-c:a aac -b:a 128k -movflags +faststart"),
        str(path),
    )
    return path


def stage_capture_1080p(directory: Path) -> Path:
    return stage_capture(directory / "stage_1080p.mp4")


# --- registry ------------------------------------------------------------------------------------

FIXTURES: dict[str, Builder] = {
    "video_1080p_h264_aac": video_1080p_h264_aac,
    "portrait_hevc_mov_rotated": portrait_hevc_mov_rotated,
    "vp9_opus51_mkv": vp9_opus51_mkv,
    "video_no_audio": video_no_audio,
    "odd_dimensions": odd_dimensions,
    "anamorphic_mpeg2": anamorphic_mpeg2,
    "flac_24bit_picture": flac_24bit_picture,
    "mp3_id3v24_apic": mp3_id3v24_apic,
    "m4a_itunes_covr": m4a_itunes_covr,
    "wav_96k_mono": wav_96k_mono,
    "ogg_vorbis": ogg_vorbis,
    "opus": opus,
    "empty": empty,
    "text_as_mp3": text_as_mp3,
    "truncated_mp4": truncated_mp4,
    "truncated_mp4_no_moov": truncated_mp4_no_moov,
    "playlist_as_mp4": playlist_as_mp4,
    "ffconcat": ffconcat,
    "still_image": still_image,
    "zip": zip_archive,
    "huge_frame_8192": huge_frame_8192,
    "hostile_tags_mp3": hostile_tags_mp3,
    "long_declared_mp4": long_declared_mp4,
    "stage_capture_1080p": stage_capture_1080p,
}

HOSTILE = frozenset(
    {
        "empty",
        "text_as_mp3",
        "truncated_mp4",
        "truncated_mp4_no_moov",
        "playlist_as_mp4",
        "ffconcat",
        "still_image",
        "zip",
        "huge_frame_8192",
        "hostile_tags_mp3",
        "long_declared_mp4",
    }
)


def make(name: str, directory: Path) -> Path:
    """Build fixture `name` under `directory` (once) and return the path of its main file."""
    builder = FIXTURES.get(name)
    if builder is None:
        raise KeyError(f"unknown test media {name!r}; known: {', '.join(sorted(FIXTURES))}")
    return build_once(name, directory, builder)


if __name__ == "__main__":
    import sys

    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("test-media")
    for fixture in sys.argv[2:] or sorted(FIXTURES):
        print(make(fixture, cache))
