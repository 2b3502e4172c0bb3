"""The record of an export and the one function that tells what a path holds.

Every folder a deploy tool writes (``tools/deploy/export_onnx.py``, ``tools/deploy/deploy.py``)
holds :data:`RECORD`, a file name no other tool writes (mmdeploy's own record is
``deploy.json``), written atomically, plus the artefact writer's manifest
(:mod:`parc_mm.utils.fileio`). :func:`artefact_of` decides from the folder's manifest, the
record and mmdeploy's ``detail.json`` (never from a file suffix) whether a path is a
checkpoint, an export or an mmdeploy deploy, and which runtime runs it.
"""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Optional

RECORD = 'parc_export.json'
RANDOM_INIT = 'random init'
# the manifest's tool names of the two routes
EXPORT_TOOL, DEPLOY_TOOL = 'export', 'deploy'


@dataclass
class Artefact:
    """What a path passed as weights holds.

    kind: ``'checkpoint'`` | ``'export'`` (our exporter's folder, or an ONNX file run
    unverified) | ``'mmdeploy'`` (a folder mmdeploy's pipeline wrote); folder: the export /
    deploy folder; model: the graph file to run; backend: the runtime that runs it;
    record: the folder's record (empty for an unverified file or a foreign mmdeploy folder);
    verified: the folder's manifest was checked (sizes and sha256 of every file)."""

    kind: str
    path: str
    folder: Optional[str] = None
    model: Optional[str] = None
    backend: Optional[str] = None
    record: dict = field(default_factory=dict)
    verified: bool = False


def write_record(folder: str, record: dict, update: bool = False) -> dict:
    """Write ``folder/RECORD`` atomically (``update``: merged over the one there)."""
    from parc_mm.utils.fileio import atomic_write
    path = osp.join(folder, RECORD)
    merged = read_record(folder) if update and osp.isfile(path) else {}
    merged.update(record)
    atomic_write(path, lambda f: json.dump(merged, f, indent=1), mode='w')
    return merged


def read_record(folder: str) -> dict:
    path = osp.join(folder, RECORD)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{folder} has no {RECORD}: it was not written by '
                                'tools/deploy/export_onnx.py or tools/deploy/deploy.py')
    with open(path) as f:
        return json.load(f)


def _mmdeploy_detail(folder: str) -> Optional[dict]:
    """mmdeploy's ``detail.json`` of a folder its pipeline wrote (with ``pipeline.json``)."""
    if not all(osp.isfile(osp.join(folder, f)) for f in ('detail.json', 'pipeline.json')):
        return None
    with open(osp.join(folder, 'detail.json')) as f:
        return json.load(f)


def _looks_like_checkpoint(path: str) -> bool:
    """A torch.save file: a zip archive (the default format) or a pickle (the legacy one)."""
    with open(path, 'rb') as f:
        head = f.read(4)
    return head.startswith(b'PK\x03\x04') or head[:1] == b'\x80'


def _mmdeploy(folder: str, detail: dict, model: Optional[str]) -> Artefact:
    from parc_mm.utils.fileio import read_manifest, verify_folder
    man = read_manifest(folder)
    verified = man is not None and man.get('tool') == DEPLOY_TOOL
    if verified:
        verify_folder(folder)
    record = read_record(folder) if osp.isfile(osp.join(folder, RECORD)) else {}
    backend = (detail.get('backend_config') or {}).get('type')
    if model is None:
        save = (detail.get('onnx_config') or {}).get('save_file', 'end2end.onnx')
        model = osp.join(folder, record.get('model', save))
    if not osp.isfile(model):
        raise FileNotFoundError(f'{folder} holds mmdeploy\'s files but not {model}: deploy '
                                'again with tools/deploy/deploy.py')
    return Artefact('mmdeploy', model, folder, model, backend, record, verified)


def artefact_of(path: str, allow_unverified: bool = False) -> Artefact:
    """What ``path`` holds (see :class:`Artefact`). Export folders are verified against their
    manifest first (a graph swapped for another model's, a truncated copy or a file edited
    since is refused, naming the file). A file that is neither a checkpoint nor listed by an
    export or mmdeploy folder is refused unless ``allow_unverified`` (then it is run as an
    ONNX graph with an empty record). A path that does not exist is a checkpoint (the
    checkpoint loader names what is missing)."""
    from parc_mm.utils.fileio import ArtefactError, read_manifest, verify_folder
    if osp.isdir(path):
        man = read_manifest(path)
        detail = _mmdeploy_detail(path)
        if detail is not None:
            return _mmdeploy(path, detail, None)
        if man is None or man.get('tool') != EXPORT_TOOL:
            raise FileNotFoundError(
                f'{path} is a folder but not one tools/deploy/export_onnx.py or '
                'tools/deploy/deploy.py wrote (no export manifest, no mmdeploy files; an '
                'export of an earlier parc_mm version wrote deploy.json instead: export again): '
                'pass a checkpoint, an export folder or an mmdeploy folder')
        verify_folder(path)
        rec = read_record(path)
        model = osp.join(path, rec.get('model', rec.get('onnx', 'model.onnx')))
        return Artefact('export', path, path, model, rec.get('backend', 'onnxruntime'), rec,
                        True)
    if not osp.isfile(path):
        return Artefact('checkpoint', path)
    folder = osp.dirname(osp.abspath(path))
    name = osp.basename(path)
    man = read_manifest(folder)
    if man is not None and man.get('tool') == EXPORT_TOOL and name in man['files']:
        verify_folder(folder)
        rec = read_record(folder)
        return Artefact('export', path, folder, path, rec.get('backend', 'onnxruntime'), rec,
                        True)
    if _looks_like_checkpoint(path):
        return Artefact('checkpoint', path)
    detail = _mmdeploy_detail(folder)
    if detail is not None:
        return _mmdeploy(folder, detail, path)
    if allow_unverified:
        return Artefact('export', path, folder, path, 'onnxruntime', {}, False)
    raise ArtefactError(
        f'{path} is not a checkpoint and was not written by tools/deploy/export_onnx.py (no '
        'export manifest lists it): nothing says which model, weights, input size or classes '
        'it holds. Export it with tools/deploy/export_onnx.py, or pass --allow-unverified to '
        'run it as it is')


__all__ = ['Artefact', 'RANDOM_INIT', 'RECORD', 'artefact_of', 'read_record', 'write_record']
