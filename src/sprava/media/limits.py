"""Bounds on the work and memory one file may cost, whatever it claims to be."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaLimits:
    """Limits that analysis steps enforce before and while decoding.

    A decompression bomb (a 50,000 × 50,000 PNG of a few KB) is refused from its header,
    before any pixel is decoded; a video with a million tiny frames is sampled, never
    walked frame by frame.
    """

    max_pixels: int = 100_000_000  # per decoded image or video frame (≈ 10,000 × 10,000)
    max_frames_sampled: int = 120  # frames decoded per video for hashing
    max_video_seconds: float = 6 * 3600.0  # longer videos are refused for analysis
    max_packets: int = 2_000_000  # demuxed packets per video before giving up
    max_metadata_bytes: int = 4_000_000  # raw tag dump kept per item
    max_seconds: float = 600.0  # wall clock for one analysis step of one file
