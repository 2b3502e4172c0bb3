"""Every file parc_mm writes goes through here.

* :func:`atomic_write`: one file, through a temporary file of the same folder, fsynced and
  renamed over the target (a reader or a kill sees the old file or the new one).
* :func:`artefact_folder`: a whole result folder (an export, a deploy, a generated dataset,
  a demo run): refused when the target exists and was not made by this writer (``force``:
  the old content is moved aside, never deleted); staged in a sibling temporary folder and
  swapped in whole at the end, so a kill, a full disk or a refused result leaves the previous
  complete folder or nothing, never a mix; every folder it makes holds a manifest
  (:data:`MANIFEST`: the tool, each file's size and sha256) that no other tool writes.
* :func:`locked`: an advisory lock file next to a shared file (the autotune cache, a checkpoint
  folder) for read-modify-write by several processes.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

MANIFEST = '.parc_mm_artefact.json'
_STAGE_MARK = '.parc_mm_stage'


class ArtefactError(RuntimeError):
    """A result folder that may not be written (not ours, a file, ...), with the fix."""


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - no /proc: the classic set-and-restore
    os.umask(mask)
    return mask


def file_mode_for(path: str) -> int:
    """The mode a new ``path`` would get from ``open()`` (0o666 & ~umask), or the mode of the
    file it replaces: an atomic write must not leave 0600 (mkstemp's) behind."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


TMP_SUFFIX = '.tmp'


def temp_name(path: str) -> str:
    """The prefix of every temporary file written for ``path`` (``.<name>.``): unique per
    write (pid + random), so two runs never share one, and recognisable for clean-up."""
    return '.' + osp.basename(path) + '.'


def atomic_write(path: str, write: Callable[[Any], None], mode: str = 'wb') -> None:
    """Write ``path`` through ``write(fileobj)`` into a temporary file of the same folder,
    fsync it and rename it over ``path``; the folder is fsynced after the rename. The file
    gets the mode a plain write would give it."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_name(path) + f'{os.getpid()}.', suffix=TMP_SUFFIX,
                               dir=folder)
    try:
        os.fchmod(fd, file_mode_for(path))
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


RESULT_KEY = 'written_by'


def check_result_file(path: str) -> str:
    """``path`` expanded, if a tool may write its result file there: nothing there yet, or a
    result parc_mm wrote (a JSON object with ``written_by: parc_mm ...``, or a text whose first
    line says so). Anything else is refused naming it. Tools call it before their work."""
    path = expand(path)
    if osp.isdir(path):
        raise ArtefactError(f'{path} is a folder: give a file name for the result')
    if osp.exists(path):
        try:
            with open(path) as f:
                head = f.read(1 << 20)
            ours = head.startswith('<!-- written by parc_mm ')
            if not ours and head.lstrip().startswith('{'):
                ours = str(json.loads(head).get(RESULT_KEY, '')).startswith('parc_mm')
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            ours = False
        if not ours:
            raise ArtefactError(f'{path} exists and was not written by parc_mm: it is left as '
                                'it is; choose another file name (or move it away yourself)')
    return path


def write_result(path: str, result: dict, tool: str) -> str:
    """Write a tool's JSON result file ``path`` atomically (:func:`check_result_file` first:
    a file parc_mm did not write is refused naming it, never overwritten)."""
    path = check_result_file(path)
    body = {RESULT_KEY: f'parc_mm {tool}', **result}
    atomic_write(path, lambda f: json.dump(body, f, indent=1), mode='w')
    return path


def write_text_result(path: str, text: str, tool: str) -> str:
    """Write a tool's text result (markdown) ``path`` atomically, under a first line that says
    parc_mm wrote it; a file there without that line is refused naming it, never
    overwritten."""
    path = check_result_file(path)
    mark = f'<!-- written by parc_mm {tool}'
    atomic_write(path, lambda f: f.write(f'{mark} -->\n{text}\n'), mode='w')
    return path


def expand(path: str) -> str:
    """``~`` and environment variables expanded, absolute: a ``data_root='~/x'`` must not
    create a folder named ``~``."""
    return osp.abspath(osp.expandvars(osp.expanduser(str(path))))


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def relative_files(folder: str) -> List[str]:
    """Every regular file under ``folder``, relative and sorted (links are not followed)."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        out += [osp.relpath(osp.join(root, name), folder) for name in sorted(files)
                if not osp.islink(osp.join(root, name))]
    return out


def folder_files(folder: str) -> Dict[str, Dict[str, Any]]:
    """``{relative path: {size, sha256}}`` of every regular file under ``folder`` (the
    manifest itself and the stage mark excluded; links are not followed)."""
    return {rel: dict(size=osp.getsize(osp.join(folder, rel)),
                      sha256=sha256_file(osp.join(folder, rel)))
            for rel in relative_files(folder) if rel not in (MANIFEST, _STAGE_MARK)}


def read_manifest(folder: str) -> Optional[dict]:
    """The manifest of a folder this writer made, or None (no manifest / not readable)."""
    try:
        with open(osp.join(folder, MANIFEST)) as f:
            man = json.load(f)
    except (OSError, ValueError):
        return None
    return man if isinstance(man, dict) and isinstance(man.get('files'), dict) else None


def verify_folder(folder: str, names: Optional[List[str]] = None) -> dict:
    """The manifest of ``folder`` after checking that every file it lists (or ``names``) is
    there with its recorded size and sha256; an :class:`ArtefactError` naming what differs."""
    man = read_manifest(folder)
    if man is None:
        raise ArtefactError(f'{folder} has no readable {MANIFEST}: it was not written by this '
                            'version of parc_mm (or was edited); write it again with the tool '
                            'that made it')
    files = man['files']
    for name in (names if names is not None else list(files)):
        full = osp.join(folder, name)
        if name not in files:
            raise ArtefactError(f'{full} is not listed in {folder}/{MANIFEST}: it was added '
                                'after the tool wrote the folder; write the folder again')
        if not osp.isfile(full):
            raise ArtefactError(f'{full} is missing (listed in {MANIFEST}); write the folder '
                                'again')
        want = files[name]
        size = osp.getsize(full)
        if size != want.get('size') or sha256_file(full) != want.get('sha256'):
            raise ArtefactError(f'{full} is not the file the tool wrote ({size} bytes, '
                                f'recorded {want.get("size")}; sha256 differs): it was replaced '
                                'or damaged since; write the folder again')
    return man


def _describe(folder: str) -> str:
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return 'unreadable'
    shown = ', '.join(entries[:3]) + (', ...' if len(entries) > 3 else '')
    return f'{len(entries)} entries: {shown}'


def check_target(target: str, force: bool = False, owned: bool = False) -> str:
    """``'new'`` (absent), ``'empty'``, ``'ours'`` (made by this writer, or ``owned``: the
    caller has checked by its own marker that it may replace the folder) or ``'foreign'``
    (only with ``force``); refuses a file and, without ``force``, a folder not made here."""
    if not osp.lexists(target):
        return 'new'
    if osp.islink(target) or not osp.isdir(target):
        raise ArtefactError(f'{target} exists and is not a folder: choose another output '
                            'folder (nothing was written)')
    if not os.listdir(target):
        return 'empty'
    if read_manifest(target) is not None or owned:
        return 'ours'
    if force:
        return 'foreign'
    raise ArtefactError(
        f'{target} exists and was not written by parc_mm ({_describe(target)}; no {MANIFEST}):'
        ' refusing to write into it. Choose another output folder, or pass --force to replace '
        'it (its current content is then moved to a sibling folder, not deleted). Nothing was '
        'written.')


def _rename_exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    platform or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _aside_name(target: str, what: str) -> str:
    stamp = time.strftime('%Y%m%d-%H%M%S')
    base = f'{target}.{what}-{stamp}'
    name, i = base, 1
    while osp.lexists(name):
        name, i = f'{base}-{i}', i + 1
    return name


def recover(target: str) -> None:
    """Finish what a killed swap left: a target renamed aside (``.<name>.parc-old-*``) whose
    replacement never arrived is put back; stale stages of ours are removed."""
    parent, name = osp.split(target)
    if not osp.isdir(parent):
        return
    for entry in os.listdir(parent):
        full = osp.join(parent, entry)
        if entry.startswith(f'.{name}.parc-old-') and not osp.lexists(target):
            os.rename(full, target)
        elif entry.startswith(f'.{name}.parc-stage-') and \
                osp.isfile(osp.join(full, _STAGE_MARK)):
            pid = entry.rsplit('-', 2)[-2] if entry.count('-') >= 2 else ''
            if not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(full, ignore_errors=True)
        elif entry.startswith(f'.{name}.parc-old-') and read_manifest(full) is not None:
            shutil.rmtree(full, ignore_errors=True)  # ours, replaced: the swap's leftover


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


RELOCATED = ('.json', '.md', 'last_checkpoint')


def _relocate(stage: str, target: str) -> None:
    """Paths into the staging folder that the run wrote into its records (JSON, markdown,
    mmengine's ``last_checkpoint``) now name the final folder."""
    for root, _, files in os.walk(stage, followlinks=False):
        for name in files:
            if not name.endswith(RELOCATED):
                continue
            path = osp.join(root, name)
            try:
                with open(path, encoding='utf-8') as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if stage in text:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(text.replace(stage, target))


@contextlib.contextmanager
def artefact_folder(target: str, tool: str, force: bool = False,
                    record: Optional[Callable[[], dict]] = None,
                    relocate: bool = False, owned: bool = False) -> Iterator[str]:
    """Write a whole result folder: ``with artefact_folder(out, 'export') as stage:`` write
    the files into ``stage``; on a normal exit the manifest (tool, parc_mm version, every
    file's size and sha256, ``record()`` if given) is added and the stage replaces ``out``
    whole. An exception (a refusal, a full disk) removes the stage and leaves ``out`` as it
    was. A target not made by this writer is refused (:func:`check_target`). ``relocate``:
    paths into the stage written into its JSON / markdown records and ``last_checkpoint``
    files are rewritten to the final folder before the swap (a run that records absolute
    paths, e.g. a training or an inference run)."""
    target = expand(target)
    recover(target)
    state = check_target(target, force, owned)
    parent, name = osp.split(target)
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f'.{name}.parc-stage-{os.getpid()}-', dir=parent)
    open(osp.join(stage, _STAGE_MARK), 'w').close()
    try:
        yield stage
        if relocate:
            _relocate(stage, target)
        from parc_mm.version import __version__
        man = dict(tool=tool, parc_mm=__version__, created=time.strftime('%Y-%m-%dT%H:%M:%S'),
                   files=folder_files(stage))
        if record is not None:
            man['record'] = record()
        os.remove(osp.join(stage, _STAGE_MARK))
        with open(osp.join(stage, MANIFEST), 'w') as f:
            json.dump(man, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _swap_in(stage, target, state)


def _swap_in(stage: str, target: str, state: str) -> None:
    parent, name = osp.split(target)
    if state == 'new':
        os.rename(stage, target)
    elif state == 'empty':
        os.rmdir(target)
        os.rename(stage, target)
    elif state == 'foreign':  # --force: the user's content is kept beside, never deleted
        aside = _aside_name(target, 'replaced')
        os.rename(target, aside)
        os.rename(stage, target)
        print(f'{target} was not written by parc_mm: its previous content is now in {aside}')
    elif _rename_exchange(stage, target):  # ours: one atomic exchange, then the old goes
        shutil.rmtree(stage, ignore_errors=True)
    else:  # two renames; recover() puts the old one back if a kill falls between them
        old = tempfile.mkdtemp(prefix=f'.{name}.parc-old-', dir=parent)
        os.rmdir(old)
        os.rename(target, old)
        os.rename(stage, target)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)


@contextlib.contextmanager
def locked(path: str, timeout: float = 60.0) -> Iterator[None]:
    """An exclusive advisory lock on ``path + '.lock'`` (``fcntl.flock``) for the block:
    several processes that read, merge and replace ``path`` take turns. Raises
    ``TimeoutError`` naming the lock file after ``timeout`` s."""
    import fcntl
    lock = path + '.lock'
    os.makedirs(osp.dirname(osp.abspath(lock)), exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{lock} is held by another process for more than '
                                       f'{timeout:.0f} s; if none runs, delete it') from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
