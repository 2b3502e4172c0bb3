"""Hooks of parc_mm (``custom_imports=dict(imports=['parc_mm.hooks'])``)."""
import glob
import hashlib
import json
import os
import os.path as osp

import torch
from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import CheckpointHook, Hook

from parc_mm.registry import HOOKS
from parc_mm.utils.checkpoint import CheckpointError, atomic_write, newest_loadable_checkpoint


@HOOKS.register_module()
class ParamChecksumHook(Hook):
    """After training, every rank writes a checksum of its model parameters to
    ``work_dir/param_checksum_rank<r>.json``: DDP replicas must agree bit for bit."""

    priority = 'VERY_LOW'

    def after_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        h = hashlib.sha256()
        total = 0.0
        for name, p in sorted(model.state_dict().items()):
            if torch.is_tensor(p) and p.is_floating_point():
                t = p.detach().cpu().contiguous()
                h.update(name.encode())
                h.update(t.numpy().tobytes())
                total += float(t.double().sum())
        rank = get_rank()
        with open(osp.join(runner.work_dir, f'param_checksum_rank{rank}.json'), 'w') as f:
            json.dump(dict(rank=rank, sha256=h.hexdigest(), sum=total, iter=runner.iter), f)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook` that never loses a checkpoint, and resumes from the
    newest checkpoint that loads.

    mmengine deletes the oldest kept checkpoint *before* writing the new one and writes the
    new file in place, so a kill during the save (``max_keep_ckpts=1``) leaves no loadable
    checkpoint and ``last_checkpoint`` naming a truncated or deleted file. Here a save is:

    1. write ``.<name>.tmp`` in the same folder, fsync it, rename it to ``<name>``;
    2. rewrite ``last_checkpoint`` the same way;
    3. only then delete the checkpoints beyond ``max_keep_ckpts``.

    Before training (``before_run``, which comes before mmengine loads or resumes) a resume,
    automatic or from an explicit file, goes to that file if it verifies (CRC32 of every
    record), else to the newest ``iter_*/epoch_*.pth`` of the work dir that does, with a
    warning naming each broken one. Same arguments as ``CheckpointHook``; local storage
    only (other backends fall back to mmengine's behaviour, with a warning).
    """

    def before_run(self, runner) -> None:
        super().before_run(runner)
        if not getattr(runner, '_resume', False):
            return
        wanted = runner._load_from
        if wanted is None:
            last = osp.join(runner.work_dir, 'last_checkpoint')
            if osp.exists(last):
                with open(last) as f:
                    wanted = f.read().strip() or None
        if wanted is not None and '://' in wanted:
            return  # remote checkpoints: mmengine's behaviour
        folder = osp.dirname(wanted) if wanted else runner.work_dir
        chosen = newest_loadable_checkpoint(folder, prefer=wanted,
                                            logger=runner.logger.warning)
        if chosen is None and wanted is not None:
            raise CheckpointError(f'--resume: {wanted} cannot be loaded and no other '
                                  f'checkpoint in {folder} verifies; start without --resume.')
        if chosen is not None and chosen != wanted:
            runner.logger.warning(f'resume: using {chosen} instead of the broken {wanted}')
        if chosen is not None:
            runner._load_from = chosen

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not self._is_local():
            runner.logger.warning(f'{type(self).__name__}: {self.out_dir} is not a local '
                                  'folder; saves there are not atomic.')
        elif is_main_process():
            for tmp in glob.glob(osp.join(self.out_dir, '.*.pth.tmp')):
                os.remove(tmp)  # a save killed before its rename

    def _is_local(self) -> bool:
        from mmengine.fileio import LocalBackend
        return isinstance(self.file_backend, LocalBackend)

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
        tmp_name = f'.{name}.tmp'
        runner.save_checkpoint(self.out_dir, tmp_name, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        tmp = osp.join(self.out_dir, tmp_name)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.last_ckpt)
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                     lambda f: f.write(self.last_ckpt), mode='w')
        for old in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)


@HOOKS.register_module()
class ParCAutotuneHook(Hook):
    """Autotune the ``impl='auto'`` ParC layers during a run (:mod:`parc_mm.ops.autotuner`):
    each configuration's implementations are timed once on the real input and the fastest is
    kept; after the first training iteration every rank takes rank 0's choices; the cache can
    be loaded before and saved after the run (one file per device).

    Args:
        cache_file: JSON cache to load (when it exists) and save; None: the default per-device
            file under ``$PARC_CACHE`` (``~/.cache/parc_mm``).
        save: write the cache after the run (main process).
    """

    priority = 'VERY_HIGH'

    def __init__(self, cache_file: str = None, save: bool = True) -> None:
        self.cache_file = cache_file
        self.save = save
        self._synced = False

    def before_run(self, runner) -> None:
        from parc_mm.ops.autotuner import default_cache_file, enable_autotune, load_autotune_cache
        self.cache_file = self.cache_file or default_cache_file()
        if osp.isfile(self.cache_file):
            n = load_autotune_cache(self.cache_file)
            runner.logger.info(f'ParC autotune: {n} choices loaded from {self.cache_file}')
        enable_autotune(True)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self._synced:
            from parc_mm.ops.autotuner import sync_autotune_cache
            sync_autotune_cache()
            self._synced = True

    def after_run(self, runner) -> None:
        from parc_mm.ops.autotuner import autotune_cache, enable_autotune, save_autotune_cache
        enable_autotune(False)
        if self.save and is_main_process() and autotune_cache():
            path = save_autotune_cache(self.cache_file)
            runner.logger.info(f'ParC autotune: {len(autotune_cache())} choices saved to {path}')
