"""Speaker de-identification: convert speech to a keyed pseudo-speaker (WORLD), the McAdams baseline, or re-speak
the words in a keyed synthetic voice (revoice).

``anonymize`` converts a whole signal, ``open_stream`` gives a long recording's block-wise converter (same output
for inputs up to one segment), ``describe`` gives the non-secret parameters for the manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..keys import SecretKey
from .methods import LEVELS, METHODS, check_method, resolve_settings, version
from .stream import VoiceStream, check_signal

__all__ = ["anonymize", "describe", "open_stream", "VoiceStream", "METHODS", "LEVELS"]


def anonymize(y: np.ndarray, *, sr: int, key: SecretKey, speaker: str | None = None,
              utterance: str | None = None, method: str = "world", level: str = "speaker",
              **settings: Any) -> np.ndarray:
    """Convert speech to a pseudo-speaker drawn from `key` and the speaker (or utterance) id.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        Float samples in [-1, 1]; every channel is converted.
    sr : int
        Sample rate, 8000 to 48000 Hz.
    key : SecretKey
        The secret the pseudo-speaker is drawn with (HMAC-SHA256).
    speaker, utterance : str, optional
        Ids; ``level="speaker"`` needs `speaker`, ``level="utterance"`` needs `utterance`.
    method : {"world", "mcadams", "revoice"}
        WORLD voice conversion (default), the VoicePrivacy B2 McAdams baseline, or the words re-spoken by a keyed
        synthetic voice.
    level : {"speaker", "utterance"}
        Same pseudo-speaker for every recording of a speaker, or a new one per recording.
    **settings
        Method settings, e.g. ``f0_method="harvest"``, ``intonation=0.5``
        (see :class:`privspeech.voice.world.WorldSettings`).

    Returns
    -------
    np.ndarray, same shape and dtype as `y`
        The converted speech, its loudness over active speech matched to the input's.

    Raises
    ------
    DataError, UsageError
        Non-float, non-finite or badly shaped input; unsupported rate, missing id, unknown method, level or
        setting.
    """
    check_signal(y)
    channels = 1 if y.ndim == 1 else y.shape[1]
    stream = open_stream(sr=sr, channels=channels, key=key, speaker=speaker, utterance=utterance, method=method,
                         level=level, **settings)
    out = np.concatenate([stream.process(y), stream.flush()])
    return out[:, 0] if y.ndim == 1 and out.ndim == 2 else out


def open_stream(*, method: str = "world", **kwargs: Any):
    """The block-wise converter of `method` (:class:`VoiceStream`, or revoice's, which re-speaks the words)."""
    if method == "revoice":
        check_method(method, kwargs.get("level", "speaker"))
        from .revoice import RevoiceStream

        return RevoiceStream(**kwargs)
    return VoiceStream(method=method, **kwargs)


def describe(method: str = "world", level: str = "speaker", key: SecretKey | None = None,
             **settings: Any) -> dict[str, Any]:
    """The non-secret parameters of a conversion, for the manifest's ``ops`` entry.

    Names the method, level, every setting (defaults filled in), the algorithm version and the key's
    public fingerprint; never the key, never the drawn pseudo-speaker.
    """
    import dataclasses

    check_method(method, level)
    resolved = resolve_settings(method, settings)
    return {"method": method, "level": level, "settings": dataclasses.asdict(resolved),
            "key": key.fingerprint if key is not None else None, "version": version(method)}
