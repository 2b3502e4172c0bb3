"""Hooks that switch the ParC operator's modes during a run: inference mode for the test
loop, the autotuner for training."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from parc_mm.registry import HOOKS


@HOOKS.register_module()
class ParCInferenceModeHook(Hook):
    """ParC inference mode (:func:`parc_mm.ops.inference_mode`) for the test loop: switched on
    in ``before_test`` (after the checkpoint is loaded) and off in ``after_test``. Not for
    validation during training, where the parameters change between loops (there every
    forward derives the kernels from the parameters, which is always correct).
    ``tools/test.py`` registers it."""

    priority = 'LOW'

    def before_test(self, runner) -> None:
        from parc_mm.ops import inference_mode
        inference_mode(runner.model, True)

    def after_test(self, runner) -> None:
        from parc_mm.ops import inference_mode
        inference_mode(runner.model, False)


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
        from parc_mm.ops.autotuner import (
            AutotuneCacheError,
            default_cache_file,
            enable_autotune,
            load_autotune_cache,
        )
        self.cache_file = self.cache_file or default_cache_file()
        if osp.isfile(self.cache_file):
            try:
                n = load_autotune_cache(self.cache_file)
                runner.logger.info(f'ParC autotune: {n} choices loaded from {self.cache_file}')
            except AutotuneCacheError as e:
                runner.logger.warning(f'{e}. Starting without it: choices are timed afresh '
                                      '(and not saved over that file).')
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
            from parc_mm.ops.autotuner import AutotuneCacheError
            try:
                path = save_autotune_cache(self.cache_file)
            except (OSError, AutotuneCacheError, TimeoutError) as e:
                # the run itself succeeded: a cache that cannot be written is a warning
                runner.logger.warning(f'ParC autotune: the choices were not saved to '
                                      f'{self.cache_file}: {e}')
                return
            runner.logger.info(f'ParC autotune: {len(autotune_cache())} choices saved to {path}')
