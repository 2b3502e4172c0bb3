"""Build hooks; all metadata lives in setup.cfg.

OpenMMLab packages carry their configs, tools and model index inside the package, under
``<package>/.mim/``: that is where mmengine reads ``parc_mm::<config>`` bases and where
``mim train / test / search parc_mm`` look. The wheel gets copies of the repository's
``configs/``, ``tools/`` and ``model-index.yml`` there (a checkout has ``parc_mm/.mim``
symlinked to them), plus ``parc_mm_mmengine.pth``, which registers ``parc_mm`` with mmengine
when Python starts (see ``parc_mm/compat.py``).
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from setup_pth import PTH_LINE, PTH_NAME  # noqa: E402

MIM_PARTS = ('configs', 'tools', 'model-index.yml')


class build_py_with_mim(build_py):
    """build_py + ``parc_mm/.mim/{configs,tools,model-index.yml}`` + the start-up ``.pth``."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # an editable install uses the checkout's parc_mm/.mim links
        mim = osp.join(self.build_lib, 'parc_mm', '.mim')
        if osp.lexists(mim):
            shutil.rmtree(mim) if not osp.islink(mim) else os.remove(mim)
        os.makedirs(mim)
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        for part in MIM_PARTS:
            src = osp.join(HERE, part)
            if osp.isdir(src):
                shutil.copytree(src, osp.join(mim, part), ignore=ignore)
            else:
                shutil.copy2(src, osp.join(mim, part))
        with open(osp.join(self.build_lib, PTH_NAME), 'w') as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode=1):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, 'editable_mode', False):
            outputs.append(osp.join(self.build_lib, PTH_NAME))
        return outputs


setup(cmdclass={'build_py': build_py_with_mim})
