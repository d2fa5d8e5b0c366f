"""The demo catalogue, so that a newcomer's fresh installation shows a living site.

Only asked for: `cite-live serve --demo` (which `scripts/serve` passes) seeds it in a background
thread when the database holds no production at all; `cite-live serve` alone never invents a
catalogue. Artists, venues and tags come first, then a handful of sessions whose media are
generated on the spot (`cite_live.demo.media`: ffmpeg's synthetic sources for pictures and music,
espeak-ng for French speech) and sent through the real pipeline (`submit_file` +
`run_transcode`), so every demo production is real HLS. Each production appears on the site as
soon as its own transcode is done; one that fails is logged and removed, and the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cite_live import search
from cite_live.catalogue import set_credits, set_tags, slugify
from cite_live.demo import media
from cite_live.demo.media import SAMPLE_RATE, Section, ffmpeg_command, lavfi, music_graph
from cite_live.jobs import scratch
from cite_live.jobs.ingest import delete_production, run_transcode, submit_file
from cite_live.models import Artist, Chapter, Production, Venue
from cite_live.services import Services

log = logging.getLogger("cite_live.demo")

# Generating a demo file takes a second or two; a minute means something is stuck.
TOOL_TIMEOUT = 120.0

MediaKind = Literal["music_audio", "music_video", "visualiser_video", "podcast"]


# --- the demo catalogue, as data -----------------------------------------------------------------


@dataclass(frozen=True)
class DemoArtist:
    name: str
    commune: str
    disciplines: tuple[str, ...]
    bio: str
    links: tuple[tuple[str, str], ...] = ()
    featured: bool = False


@dataclass(frozen=True)
class DemoVenue:
    name: str
    commune: str
    description: str


@dataclass(frozen=True)
class DemoProduction:
    title: str
    media: MediaKind
    seconds: float
    session_type: str
    venue: str
    credits: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    recorded_on: date
    description: str
    licence: str = "CC-BY-NC-SA-4.0"
    title_en: str | None = None
    description_en: str | None = None
    # The setlist: titles with the fraction of the length where each starts.
    chapters: tuple[tuple[str, float], ...] = ()
    sections: tuple[Section, ...] = (Section(0.0, 220.0, 96.0),)
    # Two colours of the cover (audio) or background (visualiser video).
    palette: tuple[str, str] = ("0x1d3557", "0xe76f51")
    speech: str = ""


ARTISTS: tuple[DemoArtist, ...] = (
    DemoArtist(
        "Élodie Fauré",
        "Romans-sur-Isère",
        ("piano", "composition"),
        "Pianiste et compositrice, Élodie Fauré écrit des pièces courtes entre musique de chambre "
        "et musiques de film. Elle enregistre ses esquisses au studio A de la Cité.",
        (("Site", "https://elodie-faure.example"),),
        featured=True,
    ),
    DemoArtist(
        "Noé Chabert",
        "Bourg-de-Péage",
        ("batterie", "électro"),
        "Batteur et producteur, Noé Chabert mêle pads électroniques et batterie acoustique. "
        "Il joue en trio sur la scène de la grande salle depuis 2023.",
        (("Bandcamp", "https://noe-chabert.example"),),
        featured=True,
    ),
    DemoArtist(
        "Collectif Peyrins Électro",
        "Peyrins",
        ("électro", "synthétiseurs modulaires"),
        "Cinq musiciens autour d'un mur de synthétiseurs modulaires, en résidence à la Cité.",
    ),
    DemoArtist(
        "Quatuor Isère",
        "Saint-Paul-lès-Romans",
        ("musique de chambre", "cordes"),
        "Deux violons, un alto, un violoncelle : le quatuor travaille le répertoire du XXe siècle "
        "et des créations d'artistes du territoire.",
        (("Site", "https://quatuor-isere.example"),),
    ),
    DemoArtist(
        "Zoé Lacroix-Muñoz",
        "Bourg-lès-Valence",
        ("réalisation", "vidéo"),
        "Réalisatrice installée à la Cartoucherie, Zoé Lacroix-Muñoz tourne des clips et des "
        "captations de concerts pour les artistes de la Drôme.",
        featured=True,
    ),
    DemoArtist(
        "Maëlle Giraud",
        "Mours-Saint-Eusèbe",
        ("radio", "journalisme"),
        "Maëlle Giraud anime « Radio Cité », le podcast des coulisses de la Cité de la Musique.",
    ),
    DemoArtist(
        "Théo Brun",
        "Chatuzange-le-Goubet",
        ("prise de son", "mixage"),
        "Ingénieur du son de la Cité : il enregistre, mixe et masterise les sessions du studio A.",
    ),
)

VENUES: tuple[DemoVenue, ...] = (
    DemoVenue(
        "Cité de la Musique — grande salle",
        "Romans-sur-Isère",
        "La salle de concert de la Cité : 400 places debout, captation multicaméra.",
    ),
    DemoVenue(
        "Cité de la Musique — studio A",
        "Romans-sur-Isère",
        "Le studio d'enregistrement de la Cité, ouvert aux artistes du territoire.",
    ),
    DemoVenue(
        "La Cartoucherie",
        "Bourg-lès-Valence",
        "Le pôle image de l'agglomération : studios de tournage, d'animation et de montage.",
    ),
    DemoVenue(
        "Place Jacquemart — scène ouverte",
        "Romans-sur-Isère",
        "La scène d'été au pied de la tour Jacquemart.",
    ),
)

PRODUCTIONS: tuple[DemoProduction, ...] = (
    # The quickest to transcode comes first, so the home page fills within seconds.
    DemoProduction(
        title="Esquisses pour piano, nº 1",
        title_en="Piano sketches, no. 1",
        media="music_audio",
        seconds=30,
        session_type="studio",
        venue="Cité de la Musique — studio A",
        credits=(
            ("Élodie Fauré", "composer"),
            ("Élodie Fauré", "performer"),
            ("Théo Brun", "engineer"),
        ),
        tags=("musique de chambre", "piano", "création"),
        recorded_on=date(2025, 3, 14),
        description="Une première esquisse enregistrée en une prise, un matin de mars.",
        description_en="A first sketch, recorded in one take on a March morning.",
        sections=(Section(0.0, 261.6, 84.0),),
        palette=("0x264653", "0xe9c46a"),
    ),
    DemoProduction(
        title="Noé Chabert Trio — live à la grande salle",
        title_en="Noé Chabert Trio — live in the main hall",
        media="music_video",
        seconds=24,
        session_type="live",
        venue="Cité de la Musique — grande salle",
        credits=(
            ("Noé Chabert", "performer"),
            ("Collectif Peyrins Électro", "performer"),
            ("Zoé Lacroix-Muñoz", "director"),
            ("Théo Brun", "engineer"),
        ),
        tags=("électro", "live", "batterie"),
        recorded_on=date(2025, 5, 23),
        description="Trois morceaux du concert de clôture de la saison, filmés à trois caméras.",
        description_en="Three pieces from the season's closing concert, shot with three cameras.",
        chapters=(
            ("Ouverture", 0.0),
            ("Les toits de Romans", 1 / 3),
            ("Rappel : Jacquemart", 2 / 3),
        ),
        sections=(
            Section(0.0, 196.0, 120.0),
            Section(1 / 3, 246.9, 100.0),
            Section(2 / 3, 174.6, 132.0),
        ),
    ),
    DemoProduction(
        title="Radio Cité #1 — la Cartoucherie, fabrique d'images",
        title_en="Radio Cité #1 — the Cartoucherie, an image factory",
        media="podcast",
        seconds=26,
        session_type="podcast",
        venue="La Cartoucherie",
        credits=(("Maëlle Giraud", "author"), ("Zoé Lacroix-Muñoz", "guest")),
        tags=("podcast", "cinéma d'animation", "patrimoine"),
        recorded_on=date(2025, 2, 6),
        description="Dans l'ancienne cartoucherie de Bourg-lès-Valence, les studios d'image "
        "ont remplacé les ateliers. Rencontre avec une réalisatrice qui y travaille.",
        chapters=(("Générique", 0.0), ("Entretien", 0.12)),
        sections=(Section(0.0, 293.7, 108.0),),
        palette=("0x3d405b", "0xf2cc8f"),
        speech="Bonjour et bienvenue dans Radio Cité, le podcast de la Cité de la Musique de "
        "Romans-sur-Isère. Aujourd'hui, nous sommes à la Cartoucherie, à Bourg-lès-Valence. "
        "Autrefois, on y fabriquait des cartouches. Aujourd'hui, on y fabrique des images : "
        "des films d'animation, des séries, des clips. Zoé, qu'est-ce qui vous a amenée ici ?",
    ),
    DemoProduction(
        title="Les toits de Romans (clip)",
        title_en="The rooftops of Romans (music video)",
        media="visualiser_video",
        seconds=16,
        session_type="clip",
        venue="La Cartoucherie",
        credits=(("Quatuor Isère", "performer"), ("Zoé Lacroix-Muñoz", "director")),
        tags=("musique de chambre", "clip"),
        recorded_on=date(2024, 11, 8),
        description="Le clip du premier single du quatuor, tourné et monté à la Cartoucherie.",
        sections=(Section(0.0, 220.0, 72.0),),
        palette=("0x14213d", "0xfca311"),
    ),
    DemoProduction(
        title="Répétition — Quatuor Isère",
        media="music_audio",
        seconds=24,
        session_type="rehearsal",
        venue="Place Jacquemart — scène ouverte",
        credits=(("Quatuor Isère", "performer"), ("Élodie Fauré", "composer")),
        tags=("musique de chambre", "répétition"),
        recorded_on=date(2025, 6, 20),
        description="Filage de l'après-midi avant le concert du soir : deux mouvements.",
        licence="CC-BY-4.0",
        chapters=(("I. Lent", 0.0), ("II. Vif", 0.5)),
        sections=(Section(0.0, 196.0, 66.0), Section(0.5, 220.0, 138.0)),
        palette=("0x6d597a", "0xeaac8b"),
    ),
)


# --- generated media: the command lines are pure data ---------------------------------------------


def _cover_graph(palette: tuple[str, str], seed: int) -> str:
    first, second = palette
    return (
        f"gradients=s=640x640:c0={first}:c1={second}:c2=0xf1faee:n=3:t=spiral:seed={seed}:d=1:r=1"
    )


def music_audio_command(item: DemoProduction, seconds: float, out: Path, seed: int) -> list[str]:
    """FLAC with a cover picture, as a studio would hand over a master."""
    return [
        *ffmpeg_command(),
        *lavfi(music_graph(item.sections, seconds)),
        *lavfi(_cover_graph(item.palette, seed)),
        *["-map", "0:a", "-map", "1:v", "-frames:v", "1", "-c:a", "flac", "-c:v", "mjpeg"],
        *["-disposition:v", "attached_pic", "-t", f"{seconds:g}", str(out)],
    ]


def video_command(item: DemoProduction, seconds: float, out: Path, seed: int) -> list[str]:
    """An H.264 + AAC capture: a test pattern (live) or moving gradients (clip), with the
    music's waveform drawn across it so that what is seen follows what is heard."""
    if item.media == "music_video":
        picture = f"testsrc2=s=854x480:r=25:d={seconds:g}"
        waves = "[w]showwaves=s=854x120:mode=cline:rate=25:colors=0xf4d35e[wave];"
        place = "[0:v][wave]overlay=0:H-h-20[v]"
    else:
        first, second = item.palette
        picture = (
            f"gradients=s=640x360:c0={first}:c1={second}:c2=0x2a9d8f:n=3:"
            f"speed=0.02:seed={seed}:r=25:d={seconds:g}"
        )
        waves = "[w]showwaves=s=640x160:mode=cline:scale=sqrt:draw=full:rate=25:colors=white[wave];"
        place = "[0:v][wave]overlay=0:(H-h)/2[v]"
    graph = f"[1:a]asplit[a][w];{waves}{place}"
    return [
        *ffmpeg_command(),
        *lavfi(picture),
        *lavfi(music_graph(item.sections, seconds)),
        *["-filter_complex", graph, "-map", "[v]", "-map", "[a]"],
        *["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p"],
        *["-g", "50", "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart"],
        *["-t", f"{seconds:g}", str(out)],
    ]


def podcast_command(
    item: DemoProduction, seconds: float, speech: Path, out: Path, seed: int
) -> list[str]:
    """A jingle, then the voice over the music turned down, and a cover."""
    intro = item.chapters[1][1] * seconds if len(item.chapters) > 1 else 0.0
    delay = int(intro * 1000)
    graph = (
        f"[0:a]volume='if(lt(t\\,{intro:.3f})\\,1\\,0.12)':eval=frame[bed];"
        f"[1:a]aresample={SAMPLE_RATE},pan=stereo|c0=c0|c1=c0,adelay={delay}|{delay}[voice];"
        "[bed][voice]amix=inputs=2:duration=first:normalize=0[a]"
    )
    return [
        *ffmpeg_command(),
        *lavfi(music_graph(item.sections, seconds)),
        *["-protocol_whitelist", "file", "-f", "wav", "-i", str(speech)],
        *lavfi(_cover_graph(item.palette, seed)),
        *["-filter_complex", graph, "-map", "[a]", "-map", "2:v", "-frames:v", "1"],
        *["-c:a", "flac", "-c:v", "mjpeg", "-disposition:v", "attached_pic"],
        *["-t", f"{seconds:g}", str(out)],
    ]


def generate_media(item: DemoProduction, directory: Path, seconds: float, seed: int) -> Path:
    """Write the demo capture of ``item`` into ``directory`` and return its path."""

    def run(command: Sequence[str]) -> None:
        media.run(command, timeout=TOOL_TIMEOUT)

    stem = slugify(item.title)
    if item.media == "music_audio":
        out = directory / f"{stem}.flac"
        run(music_audio_command(item, seconds, out, seed))
    elif item.media == "podcast":
        speech = directory / f"{stem}-voice.wav"
        run(media.speech_command(item.speech, speech))
        out = directory / f"{stem}.flac"
        run(podcast_command(item, seconds, speech, out, seed))
        speech.unlink()
    else:
        out = directory / f"{stem}.mp4"
        run(video_command(item, seconds, out, seed))
    return out


# --- seeding -------------------------------------------------------------------------------------


def catalogue_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Production))


def _ensure_people_and_places(session: Session) -> None:
    """Create the demo artists and venues; a run cut short before its first production left
    some of them behind, which are then brought up to date rather than duplicated."""
    for demo in ARTISTS:
        slug = slugify(demo.name)
        artist = session.scalars(select(Artist).where(Artist.slug == slug)).first()
        if artist is None:
            artist = Artist(name=demo.name, slug=slug)
            session.add(artist)
        artist.commune = demo.commune
        artist.disciplines = list(demo.disciplines)
        artist.bio = demo.bio
        artist.links = [{"label": label, "url": url} for label, url in demo.links]
        artist.featured = demo.featured
    for place in VENUES:
        slug = slugify(place.name)
        venue = session.scalars(select(Venue).where(Venue.slug == slug)).first()
        if venue is None:
            venue = Venue(name=place.name, slug=slug)
            session.add(venue)
        venue.commune = place.commune
        venue.description = place.description


def _describe(session: Session, production_id: str, item: DemoProduction, seconds: float) -> None:
    production = session.get(Production, production_id)
    if production is None:
        raise RuntimeError("the demo production vanished before it was described")
    production.title_en = item.title_en
    production.description = item.description
    production.description_en = item.description_en
    production.session_type = item.session_type
    production.licence = item.licence
    production.recorded_on = item.recorded_on
    production.venue = session.scalars(select(Venue).where(Venue.slug == slugify(item.venue))).one()
    production.kind = "video" if item.media.endswith("video") else "audio"
    set_credits(session, production, item.credits)
    set_tags(session, production, item.tags)
    production.chapters = [
        Chapter(title=title, start=round(fraction * seconds, 3))
        for title, fraction in item.chapters
    ]


def seed_one(
    services: Services, item: DemoProduction, directory: Path, *, seconds: float | None = None
) -> str:
    """Generate, register, describe and transcode one demo production; return its id.

    On failure nothing of it is left behind: a half-made demo item helps nobody.
    """
    length = seconds or item.seconds
    seed = PRODUCTIONS.index(item) + 1 if item in PRODUCTIONS else 1
    source = generate_media(item, directory, length, seed)
    try:
        production_id, job_id = submit_file(services, source, title=item.title)
    finally:
        source.unlink(missing_ok=True)
    try:
        with services.sessions.begin() as session:
            _describe(session, production_id, item, length)
        run_transcode(services, job_id)
    except BaseException:
        delete_production(services, production_id)
        raise
    return production_id


def seed_demo(
    services: Services,
    *,
    seconds: float | None = None,
    productions: Sequence[DemoProduction] = PRODUCTIONS,
    stop: threading.Event | None = None,
) -> list[str]:
    """Seed the demo catalogue when there is no production at all; return the ids made.

    ``seconds`` overrides the length of every generated capture (tests use a few seconds).
    """
    # The demo must be searchable however the services were opened.
    search.install(services.sessions)
    with services.sessions.begin() as session:
        if not catalogue_is_empty(session):
            log.info("the catalogue already has productions: no demo seeding")
            return []
        _ensure_people_and_places(session)
    started = time.monotonic()
    made: list[str] = []
    # Held, so that a worker starting meanwhile on this machine leaves it alone.
    with scratch.folder(services.settings.tmp_dir, prefix="seed-") as directory:
        for item in productions:
            if stop is not None and stop.is_set():
                break
            try:
                made.append(seed_one(services, item, directory, seconds=seconds))
            except Exception:
                log.exception("the demo production %r could not be made", item.title)
                continue
            log.info("demo production ready: %s", item.title)
    log.info(
        "demo catalogue: %d of %d productions in %.1f s",
        len(made),
        len(productions),
        time.monotonic() - started,
    )
    return made


class BackgroundSeed:
    """Seeds in a daemon thread once the server answers, so start-up never waits for ffmpeg."""

    def __init__(
        self,
        services: Services,
        *,
        ready: Callable[[], bool] = lambda: True,
        seconds: float | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.services = services
        self.ready = ready
        self.seconds = seconds
        self.ready_timeout = ready_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-seed", daemon=True)

    def start(self) -> BackgroundSeed:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the seeding to stop after the production in hand, waiting at most ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready() and time.monotonic() < deadline:
            if self._stop.wait(0.05):
                return
        try:
            seed_demo(self.services, seconds=self.seconds, stop=self._stop)
        except Exception:
            # The site works without its demo: never let seeding take the server down.
            log.exception("demo seeding stopped")
