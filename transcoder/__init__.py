"""The media pipeline of Cité Live: paths in, adaptive HLS and artwork out.

It knows nothing of the web, the database or object storage; its owner passes settings,
logger, temp dir, thread count and progress callback in through ``Transcoder``.
"""

from .chunks import Chunk, chunked, plan_chunks
from .errors import InputRefused, TranscodeError, TranscodeFailed
from .ladder import is_audio_only_folder
from .pipeline import Transcoder, TranscodeResult
from .playlist import Rendition
from .probe import MediaInfo
from .segmented import ChunkOutput, SharedOutput
from .settings import Limits, TranscoderSettings, VideoStep
from .tags import Tags

__all__ = [
    "Chunk",
    "ChunkOutput",
    "InputRefused",
    "Limits",
    "MediaInfo",
    "Rendition",
    "SharedOutput",
    "Tags",
    "TranscodeError",
    "TranscodeFailed",
    "TranscodeResult",
    "Transcoder",
    "TranscoderSettings",
    "VideoStep",
    "chunked",
    "is_audio_only_folder",
    "plan_chunks",
]
