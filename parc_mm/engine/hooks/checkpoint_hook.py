"""SafeCheckpointHook: mmengine's CheckpointHook whose every save is atomic and whose runs
resume from the newest loadable checkpoint."""
import errno
import glob
import json
import os
import os.path as osp
import shutil
import uuid

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from parc_mm.registry import HOOKS
from parc_mm.utils.checkpoint import (
    TMP_SUFFIX,
    CheckpointError,
    atomic_write,
    check_resumable,
    newest_loadable_checkpoint,
    temp_name,
)

_LOCK = '.parc_mm_checkpoint.lock'
_MARGIN = 16 << 20  # bytes kept free beyond a checkpoint's size


def _proc_start(pid: int):
    """A process's start time (clock ticks since boot; None when it does not run): with the
    pid it tells a live run from a stale lock whose pid was reused."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return -1
        return -1


def _is_no_space(e: BaseException) -> bool:
    # torch.save reports a full disk as a RuntimeError ('... unexpected pos ...')
    return getattr(e, 'errno', None) == errno.ENOSPC or 'unexpected pos' in str(e) or \
        'No space left' in str(e)


def _stale_temp_files(folder: str):
    """This hook's temporary files in ``folder`` (``.<name>.<pid>.<random>.tmp``, or the
    older ``.<name>.pth.tmp``) whose writer no longer runs."""
    for path in glob.glob(osp.join(glob.escape(folder), '.*' + TMP_SUFFIX)):
        parts = osp.basename(path)[1:-len(TMP_SUFFIX)].rsplit('.', 2)
        if len(parts) == 3 and parts[1].isdigit():
            if _proc_start(int(parts[1])) is None:
                yield path
        elif osp.basename(path).endswith('.pth' + TMP_SUFFIX):
            yield path


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook` that never loses a checkpoint, and resumes from the
    newest checkpoint that loads.

    mmengine deletes the oldest kept checkpoint (and the previous best one) *before* writing
    the new one and writes the new file in place, so a kill during the save leaves no
    loadable checkpoint and ``last_checkpoint`` naming a truncated or deleted file. Here every
    file the hook writes (``iter_*`` / ``epoch_*``, ``best_*``, ``last_checkpoint``) is:

    1. written to a temporary file of the final folder (unique: ``.<name>.<pid>.<random>.tmp``),
       fsynced and renamed to ``<name>``;
    2. only then are the files it replaces (beyond ``max_keep_ckpts``, the previous best)
       deleted.

    A full disk never does worse than mmengine: when the free space does not hold one more
    checkpoint (the size of the last one + 16 MiB), or the write fails for lack of space, the
    outdated files are deleted first (mmengine's order) with a warning, and the write is
    retried once. Temporary files of killed runs are removed before anything is written; a
    second run writing checkpoints into the same folder is refused, naming its pid.

    Before training (``before_run``, which comes before mmengine loads or resumes) a resume,
    automatic or from an explicit file, goes to that file if it verifies (CRC32 of every
    record), else to the newest checkpoint of the work dir (named by ``filename_tmpl``) that
    does, with a warning naming each broken one. ``last_checkpoint`` naming a file of
    another folder (a copied or moved work dir) resolves to the file of that name in this
    work dir when there is one, with a warning. A weights-only file cannot be resumed, and
    resuming at or past ``max_iters`` / ``max_epochs`` is an error, not a silent no-op.
    Each checkpoint also holds the random generators' states: where the train loop resumes
    by fast-forwarding the sampler instead of replaying the skipped batches (the OneDL fork's
    mmengine), they are put back before the first resumed batch, so random augmentations
    continue as in an uninterrupted run (:mod:`.random_state`).
    Same arguments as ``CheckpointHook``; local storage only (other backends fall back to
    mmengine's behaviour, with a warning).
    """

    def _expected_out_dir(self, runner) -> str:
        """``self.out_dir`` as ``before_train`` will set it (it is not set before)."""
        if self.out_dir is None or getattr(self, '_out_dir_final', False):
            return self.out_dir or runner.work_dir
        return osp.join(self.out_dir, osp.basename(runner.work_dir))

    def before_run(self, runner) -> None:
        super().before_run(runner)
        folder = self._expected_out_dir(runner)
        local = '://' not in str(folder)
        if local and is_main_process():
            self._take_lock(runner, folder)
            for d in {folder, runner.work_dir, osp.dirname(osp.join(
                    folder, self.filename_tmpl.format(0)))}:
                for tmp in _stale_temp_files(d):
                    runner.logger.warning(f'{type(self).__name__}: removing {tmp}, the '
                                          'temporary file of a save that was killed')
                    os.remove(tmp)
        if not getattr(runner, '_resume', False) or not local:
            return
        wanted = runner._load_from
        if wanted is None:
            wanted = self._from_last_checkpoint(runner, folder)
        if wanted is not None and '://' in wanted:
            return  # remote checkpoints: mmengine's behaviour
        search = osp.dirname(wanted) if wanted else folder
        pattern = osp.basename(self.filename_tmpl.format('*'))
        search = osp.join(search, osp.dirname(self.filename_tmpl)) if wanted is None else search
        chosen = newest_loadable_checkpoint(search, prefer=wanted,
                                            logger=runner.logger.warning,
                                            patterns=(pattern, 'iter_*.pth', 'epoch_*.pth'))
        if chosen is None and wanted is not None:
            raise CheckpointError(f'--resume: {wanted} cannot be loaded and no other '
                                  f'checkpoint in {search} verifies; start without --resume.')
        if chosen is not None and wanted is None:
            runner.logger.info(f'resume: no last_checkpoint; resuming from the newest '
                               f'checkpoint that verifies, {chosen}')
        elif chosen is not None and chosen != wanted:
            runner.logger.warning(f'resume: using {chosen} instead of the broken {wanted}')
        if chosen is not None:
            check_resumable(chosen)
            runner._load_from = chosen

    def _from_last_checkpoint(self, runner, folder: str):
        last = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.exists(last):
            return None
        with open(last) as f:
            wanted = f.read().strip() or None
        if wanted is None or '://' in wanted:
            return wanted
        # an absolute path of another folder: this work dir was copied or moved
        rel = osp.relpath(wanted, osp.dirname(osp.dirname(wanted)))
        here = [osp.join(folder, osp.basename(wanted)), osp.join(folder, rel)]
        if osp.realpath(osp.dirname(wanted)) not in {osp.realpath(folder), osp.realpath(
                osp.dirname(osp.join(folder, self.filename_tmpl.format(0))))}:
            mine = next((h for h in here if osp.isfile(h)), None)
            if mine is not None:
                runner.logger.warning(
                    f'resume: {last} names {wanted}, outside this work dir (copied or moved?); '
                    f'resuming from this work dir\'s own {mine}')
                return mine
            runner.logger.warning(f'resume: {last} names {wanted}, outside this work dir, and '
                                  'this work dir has no file of that name: using it')
        return wanted

    def _take_lock(self, runner, folder: str) -> None:
        """One run per checkpoint folder: two would overwrite each other's files. The lock
        lives where the checkpoints are written (``out_dir`` when set), so two runs with
        different work dirs but one ``out_dir`` are told apart too; checking and taking it is
        one step under a file lock (two runs starting together)."""
        from parc_mm.utils.fileio import locked
        os.makedirs(folder, exist_ok=True)
        lock = osp.join(folder, _LOCK)
        me = dict(pid=os.getpid(), start=_proc_start(os.getpid()), work_dir=runner.work_dir)
        with locked(lock):
            try:
                with open(lock) as f:
                    other = json.load(f)
            except (OSError, ValueError):
                other = None
            if isinstance(other, dict) and other.get('pid') != me['pid'] and \
                    isinstance(other.get('pid'), int) and \
                    _proc_start(other['pid']) not in (None, ) and \
                    _proc_start(other['pid']) in (other.get('start'), -1):
                where = other.get('work_dir')
                raise CheckpointError(
                    f'Another run (pid {other["pid"]}'
                    f'{f", work dir {where}" if where else ""}) is writing checkpoints to '
                    f'{folder} (lock {lock}): two runs writing one checkpoint folder overwrite '
                    'each other\'s checkpoints and resume each other\'s weights. Use another '
                    '--work-dir / checkpoint out_dir, or wait for it to finish.')
            atomic_write(lock, lambda f: json.dump(me, f), mode='w')
        self._lock = lock

    def after_run(self, runner) -> None:
        lock = getattr(self, '_lock', None)
        if lock and osp.isfile(lock):
            try:
                with open(lock) as f:
                    if json.load(f).get('pid') == os.getpid():
                        os.remove(lock)
            except (OSError, ValueError):
                pass
        super().after_run(runner)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._out_dir_final = True
        if not self._is_local():
            runner.logger.warning(f'{type(self).__name__}: {self.out_dir} is not a local '
                                  'folder; saves there are not atomic.')
        if getattr(runner, '_resume', False):
            unit, key, at, end = (('epoch', 'max_epochs', runner.epoch, runner.max_epochs)
                                  if self.by_epoch else
                                  ('iteration', 'max_iters', runner.iter, runner.max_iters))
            if at > end:  # a smaller max_iters than the checkpoint's: nothing would happen
                raise CheckpointError(
                    f'--resume: the checkpoint is at {unit} {at}, past the end of this run '
                    f'({key}={end}): nothing is left to train. Raise train_cfg.{key} above '
                    f'{at} to train on, or start without --resume.')
            if at == end:
                runner.logger.warning(f'--resume: the checkpoint is at {unit} {at}, the end of '
                                      f'this run ({key}={end}): it is already complete.')

    # --- the generators' states: exact resumes where the loop fast-forwards ----------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from .random_state import KEY, capture
        checkpoint[KEY] = capture()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.dist import get_world_size

        from .random_state import KEY, ResumeRandomState
        state = checkpoint.get(KEY)
        loop = getattr(runner, '_train_loop', None)
        iterator = getattr(loop, 'dataloader_iterator', None)
        if state is None or not getattr(runner, '_resume', False) or \
                not hasattr(iterator, 'skip_iter') or get_world_size() > 1:
            return
        loader = getattr(loop, 'dataloader', None)
        if getattr(loader, 'num_workers', 0) > 0:
            runner.logger.info('resume: the data pipeline runs in worker processes, whose '
                               'random states no checkpoint holds: random transforms after '
                               'the resume differ from an uninterrupted run.')
            return
        loop.dataloader_iterator = ResumeRandomState(iterator, state)

    def _is_local(self) -> bool:
        from mmengine.fileio import LocalBackend
        return isinstance(self.file_backend, LocalBackend)

    # --- the one write path -------------------------------------------------------------
    def _write(self, runner, name: str, removals: list, **save_kwargs) -> str:
        """``runner.save_checkpoint(out_dir, name)`` atomically, then delete ``removals``;
        delete-then-write (with a warning) when the disk cannot hold both."""
        final = osp.join(self.out_dir, name)
        folder = osp.dirname(final)
        os.makedirs(folder, exist_ok=True)
        if is_main_process() and removals:
            need = getattr(self, '_last_size', 0) + _MARGIN
            if shutil.disk_usage(folder).free < need:
                runner.logger.warning(
                    f'{type(self).__name__}: {shutil.disk_usage(folder).free >> 20} MiB free in '
                    f'{folder}, not enough for a new checkpoint next to the old ones: deleting '
                    f'{", ".join(removals)} first (not atomic: a kill during this save loses '
                    'them; free some space)')
                self._remove(removals)
        for attempt in (0, 1):
            tmp_name = osp.join(osp.dirname(name), temp_name(final) +
                                f'{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}')
            tmp = osp.join(self.out_dir, tmp_name)
            try:
                # the class's method: _save_best_checkpoint routes the instance's through here
                type(runner).save_checkpoint(runner, self.out_dir, tmp_name, **save_kwargs)
                if is_main_process():
                    with open(tmp, 'rb+') as f:
                        os.fsync(f.fileno())
                    os.replace(tmp, final)
                break
            except (OSError, RuntimeError) as e:
                if osp.exists(tmp):
                    os.remove(tmp)
                if not _is_no_space(e):
                    raise
                if attempt or not removals:
                    raise CheckpointError(
                        f'No space left in {folder} for the checkpoint {name} '
                        f'({shutil.disk_usage(folder).free >> 20} MiB free); nothing partial '
                        'was left behind. Free some space and resume with --resume.') from None
                runner.logger.warning(
                    f'{type(self).__name__}: no space for {name} next to the old checkpoints: '
                    f'deleting {", ".join(removals)} first and retrying (not atomic)')
                self._remove(removals)
        if is_main_process():
            self._last_size = osp.getsize(final)
            self._remove([r for r in removals if osp.abspath(r) != osp.abspath(final)])
        return final

    @staticmethod
    def _remove(paths: list) -> None:
        while paths:
            path = paths.pop(0)
            if osp.isfile(path):
                os.remove(path)
            elif osp.isdir(path):
                shutil.rmtree(path)

    def _save_kwargs(self, meta) -> dict:
        return dict(file_client_args=self.file_client_args,
                    save_optimizer=self.save_optimizer,
                    save_param_scheduler=self.save_param_scheduler, meta=meta,
                    by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        name = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, name)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        removals = [osp.join(self.out_dir, self.filename_tmpl.format(o)) for o in outdated]
        self._write(runner, name, removals if is_main_process() else [],
                    **self._save_kwargs(meta))
        if is_main_process():
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                         lambda f: f.write(self.last_ckpt), mode='w')

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, with its remove-then-save turned into the atomic write: the previous
        best file is deleted only after the new one is in place."""
        if not self._is_local():
            return super()._save_best_checkpoint(runner, metrics)
        deferred: list = []
        backend = self.file_backend
        hook = self

        def save_checkpoint(out_dir, filename, *args, **kwargs):
            kwargs.pop('filename_tmpl', None)
            names = ('file_client_args', 'save_optimizer', 'save_param_scheduler', 'meta',
                     'by_epoch')
            kwargs.update(zip(names, args))
            rel = osp.relpath(osp.join(out_dir, filename), hook.out_dir)
            hook._write(runner, rel, deferred, **kwargs)

        runner.save_checkpoint = save_checkpoint
        backend.remove = deferred.append
        backend.rmtree = deferred.append
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del runner.save_checkpoint
            del backend.remove, backend.rmtree
        self._remove(deferred)  # only if no save happened (the write removes them itself)
