"""The on-disk SFT dataset: shards of frames (safetensors) + samples.jsonl + manifest.json.

Layout (format "vila_nav.sft/1"; no pickle anywhere):

    <dataset>/manifest.json               written last: counts, label histograms, config, hashes
    <dataset>/shard-00000/frames.safetensors
    <dataset>/shard-00000/samples.jsonl
    <dataset>/shard-00001/...

frames.safetensors holds every frame of every rollout of the shard (a rollout = one run of one
episode; frame i = the observation after i executed primitives), H x W x 3 uint8 RGB, squashed
to the dataset's frame size. Per rollout key R (e.g. "r000012"), by `frame_encoding`:
    raw: tensor R            uint8 (n, H, W, 3)
    png: tensor R.png        uint8 (total_bytes,)  the n lossless PNG files back to back
         tensor R.offsets    int64 (n + 1,)        frame i = R.png[offsets[i]:offsets[i+1]]
The file's metadata has one entry, "vila_nav": JSON {"format", "encoding", "frame_shape"}.

samples.jsonl, one JSON object per decision point:
    id           "<rollout>-t<step>", unique in the dataset
    rollout      the rollout key in frames.safetensors of the same shard
    episode_id, scene_id, instruction
    step         primitives executed before this decision (the current frame is frame `step`)
    frames       num_frames entries, oldest first, current last: frame indices into the rollout
                 chosen by vila_nav.frames.sample_indices(step + 1, num_frames); null = black
    answer       the label in NaVILA's output vocabulary, e.g. "The next action is turn left 30 degree."
    source       "expert" (clean expert rollout) | "recovery" (perturbed rollout, expert relabelled)
                 | "dagger" (rollout partly driven by a trained model, expert relabelled)
    weight       integer repeat count from label rebalancing (>= 1; see rebalance.py)
    goal_distance_m  optional: geodesic distance (m) from the agent to the goal at the decision
                 (the target of the progress loss, aux.progress_weight); absent in datasets
                 built before it existed, which therefore cannot train that loss
    visible_objects  optional: {object name: distance (m)} of the named objects the current frame
                 shows (the simulator's ground truth, vila_nav.scenes.visibility; the target of
                 the object loss, aux.objects_weight); absent where the simulator does not know
                 them (habitat) and in datasets built before it existed

Because every frame of every rollout is stored, a loader can re-sample any other number of
frames per sample from `step` (the 1/4/8-frame ablations use one dataset). A dataset is written
into `<dataset>.partial/` and renamed when complete, so a directory with a manifest is always
whole; `verify()` checks the manifest's SHA-256 of every file.

Numpy + safetensors + OpenCV (PNG); no torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vila_nav.frames import sample_indices

FORMAT = "vila_nav.sft/1"
MANIFEST = "manifest.json"
FRAMES_FILE = "frames.safetensors"
SAMPLES_FILE = "samples.jsonl"
ENCODINGS = ("png", "raw")
_PNG_LEVEL = 3  # zlib level: 3 is within a few % of 9 on rendered frames and several times faster


class SftFormatError(ValueError):
    """An SFT dataset that is missing, incomplete or malformed (the message names the file)."""


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError("PNG frames need OpenCV: pip install opencv-python-headless") from exc
    return cv2


def encode_png(frame: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> PNG bytes as a uint8 array (lossless)."""
    cv2 = _cv2()
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, _PNG_LEVEL])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("OpenCV could not encode a frame as PNG")
    return buf.reshape(-1)


def decode_png(data: np.ndarray, where: str = "") -> np.ndarray:
    """PNG bytes (uint8 array) -> H x W x 3 uint8 RGB."""
    img = _cv2().imdecode(np.asarray(data, dtype=np.uint8), 1)  # 1 = IMREAD_COLOR (BGR)
    if img is None:
        raise SftFormatError(f"{where}: corrupt PNG frame")
    return np.ascontiguousarray(img[:, :, ::-1])


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """Squash a frame to size x size with PIL bicubic: the resize vila_nav.model's image
    processor applies at inference, so a stored frame is what the model would see (0 = as is)."""
    if size == 0 or frame.shape[:2] == (size, size):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), resample=Image.Resampling.BICUBIC))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def readable(path: str | Path) -> None:
    """Give a file the usual permissions (0666 minus the umask): safetensors writes 0600, which
    hides a dataset or checkpoint from the other users of a shared machine."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_json(path: Path, data: Any) -> None:
    """Pretty, key-sorted JSON (atomic: tmp + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(path)


# ---- writing ------------------------------------------------------------------------------------


@dataclasses.dataclass
class EncodedFrames:
    """A rollout's frames as they are stored: tensors by key suffix ("" raw; ".png"/".offsets")."""

    encoding: str
    shape: tuple[int, int, int]  # H x W x 3 of every frame
    count: int
    tensors: dict[str, np.ndarray]


def encode_rollout(frames: Sequence[np.ndarray], frame_size: int, encoding: str) -> EncodedFrames:
    """Squash (frame_size px, 0 = as is) and encode a rollout's frames (H x W x 3 uint8 RGB)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if not len(frames):
        raise ValueError("a rollout has at least its start frame")
    stored = [resize_frame(np.asarray(f, dtype=np.uint8), int(frame_size)) for f in frames]
    shape = stored[0].shape
    if any(f.shape != shape for f in stored):
        raise ValueError(f"all frames of a rollout must have one shape; got {sorted({f.shape for f in stored})}")
    if encoding == "raw":
        return EncodedFrames(encoding, shape, len(stored), {"": np.stack(stored)})
    blobs = [encode_png(f) for f in stored]
    offsets = np.cumsum([0] + [b.size for b in blobs], dtype=np.int64)
    return EncodedFrames(encoding, shape, len(stored), {".png": np.concatenate(blobs), ".offsets": offsets})


class SftWriter:
    """Writes a dataset: `add_rollout` per rollout, then `finish` (weights, manifest, rename).

    Frames of the current shard are held in memory (encoded when png) until `shard_rollouts`
    rollouts are in it; sample rows are kept until `finish`, which assigns rebalancing weights.
    """

    def __init__(self, out_dir: str | Path, *, num_frames: int, frame_size: int, encoding: str = "png",
                 shard_rollouts: int = 64, overwrite: bool = False):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.out = Path(out_dir)
        if self.out.exists() and not overwrite:
            raise FileExistsError(f"{self.out} exists; pass overwrite=true to replace it or choose another output_dir")
        self.partial = self.out.with_name(self.out.name + ".partial")
        if self.partial.exists():
            shutil.rmtree(self.partial)  # an interrupted earlier build
        self.partial.mkdir(parents=True)
        self.num_frames, self.frame_size, self.encoding = int(num_frames), int(frame_size), encoding
        self.shard_rollouts = int(shard_rollouts)
        self.frame_shape: tuple[int, int, int] | None = None
        self.rows: list[list[dict]] = []  # per shard
        self._tensors: dict[str, np.ndarray] = {}
        self._in_shard = 0
        self._rollouts = 0
        self._frames = 0

    def add_rollout(self, episode: Any, frames: Sequence[np.ndarray], decisions: Iterable[Any]) -> str:
        """Store a rollout's frames and one sample row per decision; returns the rollout key.

        decisions: objects with step, answer, source (vila_nav.training.rollout.Decision).
        """
        return self.add_encoded(episode, encode_rollout(frames, self.frame_size, self.encoding), decisions)

    def add_encoded(self, episode: Any, enc: EncodedFrames, decisions: Iterable[Any]) -> str:
        """add_rollout for frames already squashed and encoded by `encode_rollout` (e.g. in a
        worker process)."""
        if enc.encoding != self.encoding:
            raise ValueError(f"frames encoded as {enc.encoding}, this dataset stores {self.encoding}")
        if self.frame_shape is None:
            self.frame_shape = enc.shape
        if enc.shape != self.frame_shape:
            raise ValueError(f"all frames of a dataset must have one shape; got {enc.shape} after {self.frame_shape}")
        if self._in_shard == 0:
            self.rows.append([])
        key = f"r{self._rollouts:06d}"
        for suffix, array in enc.tensors.items():
            self._tensors[key + suffix] = array
        n_frames = enc.count
        for d in decisions:
            if not 0 <= d.step < n_frames:
                raise ValueError(f"decision at step {d.step} outside the rollout's {n_frames} frames")
            self.rows[-1].append({
                "id": f"{key}-t{d.step:04d}",
                "rollout": key,
                "episode_id": str(episode.episode_id),
                "scene_id": str(episode.scene_id),
                "instruction": episode.instruction.text,
                "step": int(d.step),
                "frames": sample_indices(int(d.step) + 1, self.num_frames),
                "answer": d.answer,
                "source": d.source,
                "weight": 1,
                **_distance_field(d),
                **_objects_field(d),
            })
        self._rollouts += 1
        self._frames += n_frames
        self._in_shard += 1
        if self._in_shard >= self.shard_rollouts:
            self._flush()
        return key

    def _shard_dir(self, index: int) -> Path:
        return self.partial / f"shard-{index:05d}"

    def _flush(self) -> None:
        if not self._in_shard:
            return
        from safetensors.numpy import save_file

        folder = self._shard_dir(len(self.rows) - 1)
        folder.mkdir()
        # One metadata entry: safetensors writes its metadata map in hash order, so several keys would
        # make the file bytes (and the manifest's SHA-256) differ from build to build.
        info = {"format": FORMAT, "encoding": self.encoding, "frame_shape": list(self.frame_shape or ())}
        meta = {"vila_nav": json.dumps(info, sort_keys=True)}
        save_file(self._tensors, str(folder / FRAMES_FILE), metadata=meta)
        readable(folder / FRAMES_FILE)
        self._tensors = {}
        self._in_shard = 0

    def finish(self, weights: Sequence[int] | None = None, *, config: dict | None = None,
               stats: dict | None = None, generator: str = "") -> Path:
        """Write samples.jsonl (with `weights`, in row order over all shards), the manifest, and
        move the dataset into place. Returns the dataset directory."""
        from vila_nav import __version__

        self._flush()
        rows = [r for shard in self.rows for r in shard]
        if not rows:
            shutil.rmtree(self.partial)
            raise ValueError("no samples were recorded; nothing written")
        if weights is not None:
            if len(weights) != len(rows):
                raise ValueError(f"{len(weights)} weights for {len(rows)} samples")
            for r, w in zip(rows, weights):
                if int(w) < 1:
                    raise ValueError(f"weights are repeat counts >= 1, got {w}")
                r["weight"] = int(w)
        shards = []
        for i, shard_rows in enumerate(self.rows):
            folder = self._shard_dir(i)
            with open(folder / SAMPLES_FILE, "w", encoding="utf-8") as f:
                for r in shard_rows:
                    f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            files = {name: {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
                     for name in (FRAMES_FILE, SAMPLES_FILE)}
            shards.append({"dir": folder.name, "samples": len(shard_rows), "files": files})
        from vila_nav.training.rebalance import histogram

        answers = [r["answer"] for r in rows]
        manifest = {
            "format": FORMAT,
            "generator": generator,
            "vila_nav_version": __version__,
            "num_frames": self.num_frames,
            "frame_shape": list(self.frame_shape or ()),
            "frame_encoding": self.encoding,
            "frames_stored": "all",
            "counts": {
                "samples": len(rows),
                "weighted_samples": sum(r["weight"] for r in rows),
                "rollouts": self._rollouts,
                "frames": self._frames,
                "episodes": len({r["episode_id"] for r in rows}),
                "bytes": sum(f["bytes"] for s in shards for f in s["files"].values()),
            },
            "labels": histogram(answers),
            "labels_weighted": histogram(answers, [r["weight"] for r in rows]),
            "sources": histogram([r["source"] for r in rows]),
            "stats": stats or {},
            "config": config or {},
            "shards": shards,
        }
        write_json(self.partial / MANIFEST, manifest)
        if self.out.exists():
            shutil.rmtree(self.out)
        self.partial.replace(self.out)
        return self.out

    def abort(self) -> None:
        """Remove the partial output (after an error)."""
        if self.partial.exists():
            shutil.rmtree(self.partial)


# ---- reading ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SftSample:
    """One decision point (a row of samples.jsonl) and where its frames are."""

    id: str
    dataset: int  # index of the dataset in SftDataset.paths
    shard: int  # index of the shard in that dataset's manifest
    rollout: str
    episode_id: str
    scene_id: str
    instruction: str
    step: int
    frames: tuple[int | None, ...]  # as stored (the dataset's num_frames)
    answer: str
    source: str
    weight: int
    goal_distance_m: float | None = None  # None: the dataset does not record it
    visible_objects: dict[str, float] | None = None  # name -> m; None: the dataset does not record it


def _distance_field(decision: Any) -> dict[str, float]:
    """{"goal_distance_m": d} rounded to the millimetre, or {} when the decision has none (nan)."""
    d = float(getattr(decision, "goal_distance_m", math.nan))
    return {"goal_distance_m": round(d, 3)} if math.isfinite(d) else {}


def _objects_field(decision: Any) -> dict[str, dict[str, float]]:
    """{"visible_objects": {name: d}} (sorted by name, d in m rounded to the centimetre), or {}
    when the decision does not record them (None)."""
    seen = getattr(decision, "visible_objects", None)
    return {} if seen is None else {"visible_objects": {k: round(float(seen[k]), 2) for k in sorted(seen)}}


def _check_objects(value: Any, where: str) -> dict[str, float] | None:
    """A row's optional visible_objects: None, or {str: finite number >= 0} (SftFormatError)."""
    if value is None:
        return None
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
        for k, v in value.items())
    if not ok:
        raise SftFormatError(f"{where}: 'visible_objects' must map object names to distances >= 0 (m), got {value!r}")
    return {k: float(v) for k, v in value.items()}


_ROW_FIELDS = {"id": str, "rollout": str, "episode_id": str, "scene_id": str, "instruction": str,
               "step": int, "frames": list, "answer": str, "source": str, "weight": int}


class SftDataset:
    """Read one or more SFT datasets (concatenated in order); frames are decoded on demand.

    num_frames: frames per sample to return (None = the first dataset's own); a different count
    is re-sampled from each sample's step with vila_nav.frames.sample_indices. sources: keep only
    samples of these sources ("expert", "recovery", "dagger"; None = all). limit: then keep the first N.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], num_frames: int | None = None,
                 limit: int | None = None, sources: Sequence[str] | None = None):
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p).expanduser() for p in paths]
        if not self.paths:
            raise SftFormatError("no SFT dataset given")
        self.manifests = [read_manifest(p) for p in self.paths]
        self.num_frames = int(num_frames) if num_frames is not None else int(self.manifests[0]["num_frames"])
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        self.samples: list[SftSample] = []
        for d, (path, man) in enumerate(zip(self.paths, self.manifests)):
            for s, shard in enumerate(man["shards"]):
                rows = _read_rows(path / shard["dir"] / SAMPLES_FILE, d, s)
                self.samples.extend(rows if sources is None else [r for r in rows if r.source in sources])
                if limit is not None and len(self.samples) >= limit:
                    break
            if limit is not None and len(self.samples) >= limit:
                break
        if limit is not None:
            self.samples = self.samples[: int(limit)]
        if not self.samples:
            only = "" if sources is None else f" of sources {list(sources)}"
            raise SftFormatError(f"{', '.join(map(str, self.paths))}: no samples{only}")
        self._handles: dict[tuple[int, int], Any] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> SftSample:
        return self.samples[i]

    def __getstate__(self) -> dict:  # DataLoader workers: reopen files in the worker
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    @property
    def answers(self) -> list[str]:
        return [s.answer for s in self.samples]

    @property
    def weights(self) -> list[int]:
        return [s.weight for s in self.samples]

    def frame_indices(self, sample: SftSample) -> list[int | None]:
        """Rollout frame indices of the sample at this dataset's num_frames (None = black)."""
        if self.num_frames == len(sample.frames):
            return list(sample.frames)
        return sample_indices(sample.step + 1, self.num_frames)

    def frames(self, sample: SftSample) -> list[np.ndarray]:
        """num_frames frames (H x W x 3 uint8), oldest first, current last; black where padded."""
        man = self.manifests[sample.dataset]
        black = np.zeros(tuple(man["frame_shape"]), dtype=np.uint8)
        return [black if i is None else self._frame(sample, i) for i in self.frame_indices(sample)]

    def _handle(self, sample: SftSample):
        key = (sample.dataset, sample.shard)
        h = self._handles.get(key)
        if h is None:
            from safetensors import safe_open

            path = self.paths[sample.dataset] / self.manifests[sample.dataset]["shards"][sample.shard]["dir"] / FRAMES_FILE
            try:
                h = safe_open(str(path), framework="np")
            except Exception as exc:  # noqa: BLE001 - safetensors raises several types
                raise SftFormatError(f"{path}: cannot open frames ({exc})") from exc
            self._handles[key] = h
        return h

    def _frame(self, sample: SftSample, index: int) -> np.ndarray:
        h = self._handle(sample)
        enc = self.manifests[sample.dataset]["frame_encoding"]
        where = f"{self.paths[sample.dataset]} sample {sample.id} frame {index}"
        try:
            if enc == "raw":
                return h.get_slice(sample.rollout)[index]
            offsets = h.get_slice(f"{sample.rollout}.offsets")[index : index + 2]
            data = h.get_slice(f"{sample.rollout}.png")[int(offsets[0]) : int(offsets[1])]
        except SftFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - missing key / bad slice from safetensors
            raise SftFormatError(f"{where}: not in frames.safetensors ({exc})") from exc
        return decode_png(data, where)

    def verify(self) -> None:
        """Check every shard file against the manifest's SHA-256 (raises SftFormatError)."""
        for path, man in zip(self.paths, self.manifests):
            for shard in man["shards"]:
                for name, info in shard["files"].items():
                    f = path / shard["dir"] / name
                    if not f.is_file():
                        raise SftFormatError(f"{f}: missing (listed in {path / MANIFEST})")
                    if _sha256(f) != info["sha256"]:
                        raise SftFormatError(f"{f}: SHA-256 differs from the manifest (modified or corrupt)")


def read_manifest(path: str | Path) -> dict:
    """The validated manifest of the dataset at `path`."""
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        partial = path.with_name(path.name + ".partial")
        hint = f" ({partial} exists: the build did not finish)" if partial.exists() else ""
        raise SftFormatError(f"{path}: not an SFT dataset (no {MANIFEST}){hint}; build one with `vila-nav build-sft`")
    try:
        man = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SftFormatError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        got = man.get("format") if isinstance(man, dict) else None
        raise SftFormatError(f"{file}: format {got!r}, expected {FORMAT!r}")
    for key in ("num_frames", "frame_shape", "frame_encoding", "shards"):
        if key not in man:
            raise SftFormatError(f"{file}: missing field '{key}'")
    if man["frame_encoding"] not in ENCODINGS:
        raise SftFormatError(f"{file}: frame_encoding {man['frame_encoding']!r} unknown; expected one of {ENCODINGS}")
    return man


def _read_rows(file: Path, dataset: int, shard: int) -> list[SftSample]:
    out = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SftFormatError(f"{file}: cannot read ({exc})") from exc
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SftFormatError(f"{file}:{n}: not valid JSON ({exc})") from exc
        for key, kind in _ROW_FIELDS.items():
            if not isinstance(row.get(key), kind) or (kind is int and isinstance(row.get(key), bool)):
                raise SftFormatError(f"{file}:{n}: field '{key}' must be {kind.__name__}, got {row.get(key)!r}")
        if row["weight"] < 1 or row["step"] < 0:
            raise SftFormatError(f"{file}:{n}: weight must be >= 1 and step >= 0")
        distance = row.get("goal_distance_m")
        if distance is not None and (isinstance(distance, bool) or not isinstance(distance, (int, float))
                                     or not math.isfinite(distance) or distance < 0):
            raise SftFormatError(f"{file}:{n}: 'goal_distance_m' must be a finite number >= 0, got {distance!r}")
        frames = row["frames"]
        if not frames or frames[-1] != row["step"] or not all(f is None or (isinstance(f, int) and 0 <= f <= row["step"]) for f in frames):
            raise SftFormatError(f"{file}:{n}: 'frames' must be indices <= step (null = black), current (= step) last")
        out.append(SftSample(
            id=row["id"], dataset=dataset, shard=shard, rollout=row["rollout"], episode_id=row["episode_id"],
            scene_id=row["scene_id"], instruction=row["instruction"], step=row["step"], frames=tuple(frames),
            answer=row["answer"], source=row["source"], weight=row["weight"],
            goal_distance_m=None if distance is None else float(distance),
            visible_objects=_check_objects(row.get("visible_objects"), f"{file}:{n}"),
        ))
    return out
